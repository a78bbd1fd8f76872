# Every target installs what it needs into .venv first (pinned, see requirements/).
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo test check dev bench eval size lint clean

demo: $(STAMP)          ## the whole flow on embedded defaults
	$(PY) -m infra.demo.run

test: $(STAMP)          ## the whole test suite, plus the template lint
	$(VENV)/bin/cfn-lint template.yaml
	$(PY) -m pytest

check: $(STAMP)         ## ruff (lint + format), mypy --strict on the core, import-linter layer contracts
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

dev: $(STAMP)           ## local API server on 127.0.0.1 (stand-in for `sam local start-api`)
	$(PY) -m infra.local.dev_server $(if $(PORT),--port $(PORT))

bench: $(STAMP)         ## benchmark table, written to bench-results.md
	$(PY) -m infra.bench.run

eval: $(STAMP)          ## retrieval quality on a public multi-hop benchmark, written to eval-results.md
	$(PY) -m infra.eval.run

size: $(STAMP)          ## unzipped size of each function plus the layer, for Lambda arm64
	$(PY) -m infra.deploy.package_size

lint: $(STAMP)
	$(VENV)/bin/cfn-lint template.yaml

$(STAMP): requirements/dev.txt requirements/constraints.txt shared/requirements.txt shared/pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c requirements/constraints.txt -r requirements/dev.txt -e shared
	touch $(STAMP)

clean:
	rm -rf $(VENV) .data .pytest_cache
