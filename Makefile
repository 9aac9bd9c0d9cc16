# sealq developer commands. Everything runs from the project's own virtualenv.
#   make venv   create .venv and install requirements-dev.txt (again only when requirements change)
#   make run    the local stack: python -m tools.local.devserver (embedded moto, port 9324)
#   make test   ruff, mypy, pytest on 2 workers (the CI command: .ci/run); TEST_WORKERS=0: one process
#   make bench  python -m bench
#   make admin ARGS="quarantine-list ACCOUNT QUEUE"   the operator's command (tools/admin/);
#              STACK=NAME: on a deployed stack (names from its outputs)
#   make package [STAGE=dev|prod] [API_TYPE=REST|HTTP]   build/sam.json + build/deployment.zip, no credentials, cfn-lint clean
#   make stats  the running local stack's key-cache hit ratios and KMS calls saved (tools/local/stats.py)
#   make soak   python -m bench.soak: 6,000 messages over HTTP with bad ones injected (not in make test)

VENV := .venv
PYTHON := $(VENV)/bin/python
# The project targets Python 3.13 (Lambda python3.13, Amazon Linux 2023): chalice takes the
# Lambda runtime from the interpreter that packages. A `python3.13` on PATH that runs, else
# pyenv's 3.13 (its bare shim fails unless 3.13 is the active version; found without pyenv
# on PATH too); override with
# `make venv PYTHON313=/path/to/python3.13`.
PYTHON313 ?= $(shell for p in python3.13 $$(pyenv root 2>/dev/null)/versions/3.13*/bin/python3.13 \
	$${PYENV_ROOT:-$$HOME/.pyenv}/versions/3.13*/bin/python3.13; do \
	"$$p" -c 'import sys; assert sys.version_info[:2] == (3, 13)' 2>/dev/null && { command -v "$$p"; break; }; done)
STAMP := $(VENV)/.requirements-py313.stamp
# app.py and bench/ are checked once they exist (app.py lands with the integration).
LINT_PATHS := chalicelib tools tests $(wildcard bench) $(wildcard app.py)
TYPE_PATHS := chalicelib tools tests bench $(wildcard app.py)

STAGE ?= dev
# The stack's default ApiType (the API Gateway in front of the handler).
API_TYPE ?= REST
# pytest-xdist workers (a file's tests stay on one worker, its fixtures with them).
TEST_WORKERS ?= 2
# The console's browser test (tests/e2e/test_console.py) drives Debian's Chromium through
# Playwright (requirements-dev.txt); installed here when missing (as root, else with sudo).
# Elsewhere: `make test CHROMIUM=/path/to/chromium`.
CHROMIUM ?= /usr/bin/chromium
AS_ROOT := $(if $(filter 0,$(shell id -u)),,sudo -n)

.PHONY: venv run test bench soak admin package stats

venv: $(STAMP)

$(STAMP): requirements.txt requirements-dev.txt
	@test -n "$(PYTHON313)" || { echo "sealq needs Python 3.13 (Lambda's python3.13 runtime)." \
	  "Install it (e.g. 'pyenv install 3.13', or your OS's python3.13 package) or pass" \
	  "PYTHON313=/path/to/python3.13." >&2; exit 1; }
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 13)' 2>/dev/null \
	  || { rm -rf $(VENV) && $(PYTHON313) -m venv $(VENV); }
	$(PYTHON) -m pip install --disable-pip-version-check -q -r requirements-dev.txt
	touch $@

run: venv
	$(PYTHON) -m tools.local.devserver

test: venv $(CHROMIUM)
	$(VENV)/bin/ruff check $(LINT_PATHS)
	$(VENV)/bin/mypy $(TYPE_PATHS)
	SEALQ_CHROMIUM=$(CHROMIUM) $(VENV)/bin/pytest -q -n $(TEST_WORKERS) --dist loadfile

$(CHROMIUM):
	@command -v apt-get >/dev/null || { echo "the browser test needs Chromium at $(CHROMIUM):" \
	  "install it, or pass CHROMIUM=/path/to/chromium" >&2; exit 1; }
	$(AS_ROOT) apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $(AS_ROOT) apt-get install -y -qq chromium

bench: venv
	$(PYTHON) -m bench

admin: venv
	$(PYTHON) -m tools.admin $(if $(STACK),--stack $(STACK)) $(ARGS)

stats: venv
	$(PYTHON) -m tools.local.stats

soak: venv
	$(PYTHON) -m bench.soak

package: venv
	$(PYTHON) -m tools.package --stage $(STAGE) --api-type $(API_TYPE) --out build
