# sealq developer commands. Everything runs from the project's own virtualenv.
#   make venv   create .venv and install requirements-dev.txt (again only when requirements change)
#   make run    the local stack: python -m tools.devserver (embedded moto, port 9324)
#   make test   ruff, mypy, pytest (the CI command: .ci/run)
#   make bench  python -m bench
#   make admin ARGS="quarantine-list ACCOUNT QUEUE"   the operator's command (tools/admin.py)
#   make stats  the running local stack's key-cache hit ratios and KMS calls saved (tools/stats.py)
#   make soak   python -m bench.soak: 6,000 messages over HTTP with bad ones injected (not in make test)

VENV := .venv
PYTHON := $(VENV)/bin/python
STAMP := $(VENV)/.requirements.stamp
# app.py and bench/ are checked once they exist (app.py lands with the integration).
LINT_PATHS := chalicelib tools tests $(wildcard bench) $(wildcard app.py)
TYPE_PATHS := chalicelib tools tests bench $(wildcard app.py)

.PHONY: venv run test bench soak admin stats

venv: $(STAMP)

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(PYTHON) || python3 -m venv $(VENV)
	$(PYTHON) -m pip install --disable-pip-version-check -q -r requirements-dev.txt
	touch $@

run: venv
	$(PYTHON) -m tools.devserver

test: venv
	$(VENV)/bin/ruff check $(LINT_PATHS)
	$(VENV)/bin/mypy $(TYPE_PATHS)
	$(VENV)/bin/pytest -q

bench: venv
	$(PYTHON) -m bench

admin: venv
	$(PYTHON) -m tools.admin $(ARGS)

stats: venv
	$(PYTHON) -m tools.stats

soak: venv
	$(PYTHON) -m bench.soak
