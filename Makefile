# The library catalog service. `make help` lists the targets.
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
UV_VERSION := 0.13.9
# uv comes from PATH when present, otherwise it is installed into .tools/ with pip.
UV := $(or $(shell command -v uv 2>/dev/null),$(CURDIR)/.tools/bin/uv)
# Use the machine's Python (>= 3.11); never download one.
export UV_PYTHON_DOWNLOADS ?= never
# Compile the dependencies' bytecode at install: where PYTHONDONTWRITEBYTECODE is set (as on
# this kind of machine) nothing else ever writes it, and every `library` command, server and
# test subprocess would compile SQLAlchemy, FastAPI and pydantic from source again (seconds).
export UV_COMPILE_BYTECODE ?= 1
export UV_PYTHON ?= $(PYTHON)
RUN := $(UV) run --frozen
# The benchmark tools (group "bench") are installed by the bench targets only, on first use.
BENCH_RUN := $(UV) run --frozen --group bench

BOOKS ?= 1000000
SEED ?= 1

.PHONY: help install run run-cluster token migrate revision import bench-import seed-large test test-quick test-unit test-integration test-cluster test-containers images lint audit fmt bench bench-auth bench-instructions bench-quick bench-observability bench-outbox bench-cluster docker-build clean openapi fuzz-api

help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-18s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(CURDIR)/.tools/bin/uv:
	$(PYTHON) -m venv .tools
	.tools/bin/python -m pip install --quiet "uv==$(UV_VERSION)"

.venv/.installed: pyproject.toml uv.lock | $(UV)
	$(UV) sync --locked
	@touch $@

install: .venv/.installed ## Create .venv with every dependency from uv.lock

run: install ## Serve on http://127.0.0.1:8000 (embedded PostgreSQL unless DATABASE_URL is set; RELOAD=1 restarts on changes)
	$(RUN) library dev $(if $(RELOAD),--reload)

run-cluster: install ## Serve :8000 on the whole shape: embedded primary, streaming replica, PgBouncer, 2 workers (Ctrl-C stops all)
	$(RUN) python -m tools.cluster --port $(or $(PORT),8000)

SCOPE ?= catalog:write catalog:admin
token: install ## Print a development access token (make -s token SCOPE="catalog:write"); make run verifies it
	@$(RUN) library token --scope "$(SCOPE)"

migrate: install ## Upgrade the database to the latest schema (embedded dev database unless DATABASE_URL is set)
	$(RUN) library migrate --embedded-if-unset

revision: install ## Autogenerate a migration from the models: make revision m="what it does" (review the file)
	@test -n "$(m)" || { echo 'usage: make revision m="what the migration does"' >&2; exit 2; }
	$(RUN) library revision "$(m)"

FILE ?= ../shared/data/goodbooks-10k/books.csv
import: install ## Import a goodbooks books.csv (FILE=..., default the shared goodbooks-10k) into the dev database
	$(RUN) library import goodbooks "$(FILE)"

bench-import: install ## Benchmark the import against a raw asyncpg COPY of the same rows (10k and 100k rows)
	$(BENCH_RUN) python bench/import_bench.py

seed-large: install ## Replace the catalog with BOOKS generated books (default 1,000,000; SEED=1)
	$(RUN) library seed --books $(BOOKS) --seed $(SEED) --replace --embedded-if-unset

test: install ## Run the unit and integration suites (PostgreSQL: TEST_DATABASE_URL, Docker, or embedded)
	$(RUN) pytest

# The suites that take minutes (real servers killed, schemathesis, races) are left to make test.
QUICK_MARKERS := not fault and not fuzz and not race and not slow
# QUICK_WORKERS=2 runs them in two pytest-xdist processes, each on a database of its own (with
# TEST_DATABASE_URL or Docker); on this shared 2-core machine one process was the faster.
QUICK_WORKERS ?= 1
test-quick: install ## Unit + integration without the fault, fuzz, race and slow suites (about a minute)
	$(RUN) pytest -m "$(QUICK_MARKERS)" $(if $(filter-out 1,$(QUICK_WORKERS)),-n $(QUICK_WORKERS)) tests/unit tests/integration

test-unit: install ## Run the unit suite (no database, no network)
	$(RUN) pytest tests/unit

test-integration: install ## Run the integration suite against a real PostgreSQL
	$(RUN) pytest tests/integration

# The app under test on make run-cluster's shape: PgBouncer (transaction mode) for the requests,
# the primary for the relay, reads from a streaming replica; the clients send Commit-LSN. The whole
# suite, fault, fuzz, race and slow included (the connection-loss tests kill PgBouncer's server
# connections on the primary and the read pool's on the replica).
test-cluster: install ## The integration suite against the cluster (TEST_CLUSTER=1: PgBouncer, a replica)
	TEST_CLUSTER=1 $(RUN) pytest tests/integration

# The local images scripts/images.sh builds from Debian's and PyPI's packages (no registry).
LOCAL_POSTGRES_IMAGE ?= local/postgres:15
LOCAL_APP_IMAGE ?= library:local
export LOCAL_POSTGRES_IMAGE LOCAL_APP_IMAGE

images: ## Build the local images (PostgreSQL 15, Python 3.11, uv, the app); skips what is current
	scripts/images.sh all

test-containers: install ## Integration suite on a PostgreSQL container + the app image's smoke test (starts dockerd if none runs)
	trap 'scripts/docker-engine.sh stop' EXIT; \
	scripts/docker-engine.sh start; \
	scripts/images.sh all; \
	TEST_REQUIRE_DOCKER=1 TEST_POSTGRES_IMAGE=$(LOCAL_POSTGRES_IMAGE) TEST_APP_IMAGE=$(LOCAL_APP_IMAGE) \
	TESTCONTAINERS_RYUK_DISABLED=true $(RUN) pytest tests/integration tests/containers

lint: install ## ruff check, ruff format --check, mypy --strict, import-linter, hadolint
	$(RUN) ruff check .
	$(RUN) ruff format --check .
	$(RUN) mypy
	$(RUN) lint-imports
	$(RUN) hadolint Dockerfile

audit: install ## bandit over src; pip-audit of uv.lock (AUDIT_STRICT=1: unaudited packages fail too)
	$(RUN) bandit -q -r src scripts
	UV=$(UV) $(RUN) python scripts/audit_lock.py

# schemathesis as an outsider runs it; the refusals JSON Schema cannot express are sorted out.
fuzz-api: install ## schemathesis on a live server: every phase, --checks all, a fixed seed (DATABASE_URL: a scratch database it fills)
	@test -n "$(DATABASE_URL)" || { echo 'usage: DATABASE_URL=postgresql://.../scratch make fuzz-api (the run fills that database)' >&2; exit 2; }
	$(RUN) python scripts/fuzz_api.py --database-url "$(DATABASE_URL)" $(if $(FUZZ_SEED),--seed $(FUZZ_SEED))

openapi: install ## Regenerate openapi.json (make test fails while the committed one is not current)
	$(RUN) python -m tools.openapi openapi.json

fmt: install ## Format and auto-fix
	$(RUN) ruff format .
	$(RUN) ruff check --fix .

# The benchmark's catalog size (the database bench_library is seeded once and reused).
BENCH_BOOKS ?= 1000000

bench: install ## Benchmark the app against a raw asyncpg baseline and pgbench (needs wrk, pgbench, PostgreSQL); MODE=cluster: the scaled-out shapes
	$(BENCH_RUN) python -m $(if $(filter cluster,$(MODE)),bench.cluster,bench --books $(BENCH_BOOKS))

bench-cluster: install ## 1 and 2 workers, direct and through PgBouncer, reads from the replica: req/s and p99 at c16 and c64 (make run-cluster's pieces)
	$(BENCH_RUN) python -m bench.cluster

bench-observability: install ## GET with metrics and tracing on against the same build with both off (100k books)
	$(BENCH_RUN) python -m bench.observability --books $(or $(OBS_BOOKS),100000)

bench-outbox: install ## POST with the transactional outbox against the same build without it (100k books)
	$(BENCH_RUN) python -m bench.outbox --books $(or $(OUTBOX_BOOKS),100000)

# A migrated database seeded with `library seed` (e.g. 100,000 books).
AUTH_BENCH_DATABASE_URL ?= postgresql://postgres@127.0.0.1:5432/bench_auth
bench-auth: install ## POST with token verification vs auth disabled (and reads vs BEFORE=checkout), app vs app
	$(BENCH_RUN) python -m bench.auth_bench --database-url "$(AUTH_BENCH_DATABASE_URL)" $(if $(BEFORE),--before-checkout "$(BEFORE)") $(if $(BEFORE_WRITES),--before-writes) $(foreach s,$(SHAPES),--only $(s))

# The seeded database the in-process benchmarks read (make bench-quick seeds it).
MICRO_DSN ?= postgresql://postgres@127.0.0.1:5432/bench_library_100000
bench-instructions: install ## Instructions per request (GET one book, list 50) under valgrind: load-proof, for comparing commits (OBS="off on ...": observability variants; BASELINE=<run>/replay.json: make bench's baseline)
	$(BENCH_RUN) python -m bench.instructions --dsn "$(MICRO_DSN)" $(foreach s,$(SHAPES),--only $(s)) $(foreach o,$(OBS),--observability $(o)) $(if $(BASELINE),--baseline "$(BASELINE)")

bench-quick: install ## A short benchmark on 100,000 books (2 rounds of 4 s)
	$(BENCH_RUN) python -m bench --books 100000 --rounds 2 --duration 4 --warmup 2

docker-build: ## Build the production image (needs a Docker engine)
	docker build -t library:latest .

clean: ## Remove the virtualenv, caches and the embedded databases
	rm -rf .venv .tools .pytest_cache .mypy_cache .ruff_cache .hypothesis .pgdata
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
