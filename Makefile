# The two commands: `make run` (the whole product, embedded defaults) and
# `make test` (linters, import contracts + the full suite against real PostgreSQL and Redis).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
TEST_ENV := DJANGO_SETTINGS_MODULE=portal.settings.test
# Browser tests drive Debian's Chromium with Playwright (a test tool's own browser
# download does not work here).
CHROMIUM := /usr/bin/chromium

.PHONY: run test fuzz lint otp api-key check-deploy validate-stack clean sdk

# Generated requests per API operation in the schemathesis run (tests/api/test_schema.py):
# `make test` and `make fuzz` use this many; a bare `pytest` runs a quick 8.
FUZZ_EXAMPLES ?= 50

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: requirements.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.installed-dev: requirements.txt requirements-dev.txt requirements-otel.txt sdk/python/pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $(VENV)/.installed $@

$(CHROMIUM):
	apt-get install -y --no-install-recommends chromium \
		|| (apt-get update && apt-get install -y --no-install-recommends chromium)

# axe-core for the browser tests' accessibility check (tests/browser/package-lock.json).
AXE_CORE := tests/browser/node_modules/.package-lock.json
$(AXE_CORE): tests/browser/package-lock.json
	cd tests/browser && npm ci --no-audit --no-fund

run: $(VENV)/.installed
	$(BIN)/python -m portal.launcher

test: $(VENV)/.installed-dev $(CHROMIUM) $(AXE_CORE)
	$(TEST_ENV) $(BIN)/python -m portal.services_check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(TEST_ENV) $(BIN)/python manage.py check --fail-level WARNING
	$(TEST_ENV) $(BIN)/python manage.py makemigrations --check --dry-run
	$(MAKE) --no-print-directory check-deploy
	$(TEST_ENV) SCHEMATHESIS_MAX_EXAMPLES=$(FUZZ_EXAMPLES) $(BIN)/pytest

# Schemathesis alone against /v1/openapi.json (`make fuzz FUZZ_EXAMPLES=200` for more).
fuzz: $(VENV)/.installed-dev
	$(TEST_ENV) SCHEMATHESIS_MAX_EXAMPLES=$(FUZZ_EXAMPLES) $(BIN)/pytest tests/api/test_schema.py

# Regenerate the SDKs' models from the served OpenAPI document (tests fail while the
# committed models differ from it).
sdk: $(VENV)/.installed-dev
	$(TEST_ENV) $(BIN)/python manage.py spectacular --format openapi-json --file sdk/openapi.json
	$(BIN)/python sdk/python/generate.py sdk/openapi.json
	$(BIN)/python sdk/typescript/generate.py sdk/openapi.json

# Production settings must pass Django's deployment checklist.
check-deploy: $(VENV)/.installed
	DJANGO_SETTINGS_MODULE=portal.settings.production \
	DJANGO_SECRET_KEY=$$($(BIN)/python -c 'import secrets; print(secrets.token_urlsafe(50))') \
	LINKED_CREDENTIAL_KEYS=$$($(BIN)/python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())') \
	PAYMENT_WEBHOOK_SECRET=check-deploy DATABASE_URL=postgres://check@127.0.0.1/check \
	DJANGO_ALLOWED_HOSTS=portal.example.com \
	$(BIN)/python manage.py check --deploy --fail-level WARNING

# The deployable stack alone (Dockerfile, deploy/compose.yaml, deploy/k8s/): schema
# validation, hadolint and consistency with the code; part of `make test` too.
validate-stack: $(VENV)/.installed-dev
	$(TEST_ENV) $(BIN)/pytest -q tests/deploy

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

# The demo ops user's current TOTP code, for the admin login.
otp: $(VENV)/.installed
	$(BIN)/python manage.py totp_code ops@prime.local

api-key: $(VENV)/.installed
	$(BIN)/python manage.py demo_api_key alice@prime.local

clean:
	rm -rf var staticfiles .pytest_cache .ruff_cache .import_linter_cache

# The TypeScript SDK (sdk/typescript): its toolchain from package-lock.json, its models from
# sdk/openapi.json, tsc to dist/, and its offline tests (the live suite runs under pytest:
# tests/sdk/test_typescript_sdk.py, part of `make test`, which also runs npm ci and tsc).
.PHONY: sdk-typescript
sdk-typescript: $(VENV)/.installed
	cd sdk/typescript && npm ci --no-audit --no-fund
	$(BIN)/python sdk/typescript/generate.py sdk/openapi.json
	cd sdk/typescript && npm run build && npm run typecheck-tests && npm run test:unit
