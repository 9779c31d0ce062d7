"""Every request and response body in the served OpenAPI document has an example, and
every example is valid against its schema.

The document is the one partners read (GET /v1/openapi.json). For each operation, each
JSON request body and each JSON response body (every status, errors included) needs at
least one example (`examples`, or a lone `example`); every example present, of any media
type, is validated with `jsonschema` against its schema:

- OpenAPI 3.0's schema dialect is JSON Schema draft 4 plus `nullable`, which becomes an
  `anyOf` with `{"type": "null"}`; `$ref`s resolve against the document's components.
- Objects are closed: the document lists every field the API writes, so an example key
  its schema does not list is a mistake (a typo, or a field the document forgot).
- Formats are checked: `date-time` (ISO 8601 with a time zone), `date`, `uuid`, `uri`
  and `decimal` (a decimal string, never a JSON number).

The last tests break the real document on purpose to show the checks fail.
"""

import copy
import re
import uuid
from collections.abc import Iterator
from datetime import date, datetime
from urllib.parse import urlsplit

import pytest
from django.test import Client
from jsonschema import Draft4Validator, FormatChecker

METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
JSON_MEDIA_TYPE = re.compile(r"^application/(?:[\w.-]+\+)?json$")
DECIMAL = re.compile(r"^[+-]?(?:\d+(?:\.\d*)?|\.\d+)$")
DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")

FORMATS = FormatChecker(formats=())


@FORMATS.checks("date-time", raises=ValueError)
def _date_time(value) -> bool:
    if not isinstance(value, str):
        return True
    return "T" in value and datetime.fromisoformat(value).tzinfo is not None


@FORMATS.checks("date", raises=ValueError)
def _date(value) -> bool:
    return not isinstance(value, str) or bool(DAY.match(value) and date.fromisoformat(value))


@FORMATS.checks("uuid", raises=ValueError)
def _uuid(value) -> bool:
    return not isinstance(value, str) or str(uuid.UUID(value)) == value.lower()


@FORMATS.checks("uri")
def _uri(value) -> bool:
    if not isinstance(value, str):
        return True
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


@FORMATS.checks("decimal")
def _decimal(value) -> bool:
    return not isinstance(value, str) or bool(DECIMAL.match(value))


def json_schema(schema):
    """An OpenAPI 3.0 schema as JSON Schema draft 4 (closed objects, `nullable` as null)."""
    if not isinstance(schema, dict):
        return schema  # `additionalProperties: true`
    out = dict(schema)
    for key in ("items", "additionalProperties", "not"):
        if key in out:
            out[key] = json_schema(out[key])
    for key in ("allOf", "anyOf", "oneOf"):
        if key in out:
            out[key] = [json_schema(part) for part in out[key]]
    if "properties" in out:
        out["properties"] = {name: json_schema(part) for name, part in out["properties"].items()}
        out.setdefault("additionalProperties", False)
    if out.pop("nullable", False):
        out = {"anyOf": [out, {"type": "null"}]}
    return out


def operations(document: dict) -> Iterator[tuple[str, dict]]:
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method in METHODS:
                yield f"{method.upper()} {path} ({operation.get('operationId')})", operation


def bodies(document: dict) -> Iterator[tuple[str, str, dict]]:
    """(operation, "request"/status + media type, media type object) of every body."""
    for name, operation in operations(document):
        for media_type, content in operation.get("requestBody", {}).get("content", {}).items():
            yield name, f"request {media_type}", content
        for status, response in operation.get("responses", {}).items():
            for media_type, content in response.get("content", {}).items():
                yield name, f"{status} {media_type}", content


def examples_of(content: dict) -> dict[str, dict]:
    found = dict(content.get("examples", {}))
    if "example" in content:
        found["example"] = {"value": content["example"]}
    return found


def missing_examples(document: dict) -> list[str]:
    """The JSON bodies without an example."""
    return [
        f"{name}: {body}"
        for name, body, content in bodies(document)
        if JSON_MEDIA_TYPE.match(body.split(" ", 1)[1]) and not examples_of(content)
    ]


def invalid_examples(document: dict) -> list[str]:
    """Every example that does not match its schema, with jsonschema's reasons."""
    components = {
        "schemas": {
            name: json_schema(schema)
            for name, schema in document.get("components", {}).get("schemas", {}).items()
        }
    }
    problems = []
    for name, body, content in bodies(document):
        validator = Draft4Validator(
            {"allOf": [json_schema(content.get("schema", {}))], "components": components},
            format_checker=FORMATS,
        )
        for key, example in examples_of(content).items():
            if "value" not in example:
                problems.append(f"{name}: {body} example {key!r} has no inline value")
                continue
            for error in validator.iter_errors(example["value"]):
                where = "/".join(map(str, error.absolute_path)) or "(the body)"
                problems.append(f"{name}: {body} example {key!r} at {where}: {error.message}")
    return problems


@pytest.fixture(scope="module")
def document(django_db_blocker) -> dict:
    with django_db_blocker.unblock():
        response = Client().get("/v1/openapi.json")
    assert response.status_code == 200, response.content[:500]
    return response.json()


def test_every_operation_is_checked(document):
    names = [name for name, _ in operations(document)]
    assert len(names) >= 37, names
    assert sum(1 for name, body, _ in bodies(document) if body.startswith("request")) >= 10


def test_every_request_and_response_body_has_an_example(document):
    missing = missing_examples(document)
    assert not missing, "Bodies without an example:\n" + "\n".join(missing)


def test_every_example_matches_its_schema(document):
    problems = invalid_examples(document)
    assert not problems, "Examples that do not match their schema:\n" + "\n".join(problems)


def test_every_error_code_an_operation_answers_has_its_example(document):
    """The generated error examples: one per code of each error response's enum."""
    for name, body, content in bodies(document):
        status = body.split(" ", 1)[0]
        if not status.isdigit() or int(status) < 400:
            continue
        codes = content["schema"].get("properties", {}).get("code", {}).get("enum")
        if codes is None:
            continue  # not an error object (leverage's 422 is a REJECTED result)
        shown = {example["value"]["code"] for example in examples_of(content).values()}
        assert shown == set(codes), f"{name}: {body} shows {sorted(shown)}, answers {codes}"


# --- the checks fail when they should ---------------------------------------------------


def _body(document: dict, path: str, method: str, status: str | None = None) -> dict:
    operation = document["paths"][path][method]
    if status is None:
        return operation["requestBody"]["content"]["application/json"]
    return operation["responses"][status]["content"]["application/json"]


def _first_example(content: dict) -> dict:
    return next(iter(content["examples"].values()))["value"]


def test_a_body_without_an_example_is_reported(document):
    broken = copy.deepcopy(document)
    del _body(broken, "/v1/intelligence/execute", "post", "201")["examples"]
    del _body(broken, "/v1/intelligence/orders", "post")["examples"]
    assert missing_examples(broken) == [
        "POST /v1/intelligence/execute (execute): 201 application/json",
        "POST /v1/intelligence/orders (orders_create): request application/json",
    ]


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("notional", 50000, "is not valid under any of the given schemas"),  # a JSON number
        ("filled_notional", "50,000.00", "is not a 'decimal'"),
        ("status", "done", "is not one of"),
        ("created_at", "2026-04-22 15:04:37", "is not a 'date-time'"),
        ("fees", None, "None is not of type 'string'"),  # not nullable
        ("notional_usd", "50000.000000", "Additional properties are not allowed"),
    ],
)
def test_a_wrong_example_is_reported(document, field, value, reason):
    broken = copy.deepcopy(document)
    _first_example(_body(broken, "/v1/intelligence/execute", "post", "201"))[field] = value
    (problem,) = invalid_examples(broken)
    assert problem.startswith("POST /v1/intelligence/execute (execute): 201 application/json")
    assert reason in problem


def test_a_wrong_request_or_error_example_is_reported(document):
    broken = copy.deepcopy(document)
    _first_example(_body(broken, "/v1/intelligence/execute", "post"))["side"] = "long"
    _first_example(_body(broken, "/v1/intelligence/execute", "post", "409"))["code"] = "conflict"
    problems = invalid_examples(broken)
    assert len(problems) == 2, problems
    assert "request application/json example 'Quickstart' at side" in problems[0]
    assert "409 application/json example 'DuplicateOrder' at code" in problems[1]


def test_nullable_is_json_schema_null():
    nullable = json_schema({"type": "string", "format": "decimal", "nullable": True})
    assert Draft4Validator(nullable, format_checker=FORMATS).is_valid(None)
    assert Draft4Validator(nullable, format_checker=FORMATS).is_valid("1.50")
    assert not Draft4Validator(nullable, format_checker=FORMATS).is_valid(1.5)
    plain = json_schema({"type": "string"})
    assert not Draft4Validator(plain).is_valid(None)
