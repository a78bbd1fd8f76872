# Every target installs what it needs into .venv first (pinned, see requirements/).
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
# The SAM CLI and checkov pin conflicting boto3 versions (and differ from the tests'): each gets its own venv.
TOOLS  := $(VENV)/deploy-tools
SAM    := $(TOOLS)/sam/bin/sam
CHECKOV:= $(TOOLS)/checkov/bin/checkov

.PHONY: demo test check dev bench eval size deploy-check lint clean

demo: $(STAMP)          ## the whole flow on embedded defaults
	$(PY) -m infra.demo.run

test: $(STAMP) $(SAM)   ## the whole test suite (SAM's own transform included), plus the template lint
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


deploy-check: $(STAMP) $(SAM) $(CHECKOV)  ## sam validate --lint, cfn-lint, checkov (skips justified in the template), layer size
	SAM_CLI_TELEMETRY=0 $(SAM) validate --lint --template template.yaml
	$(VENV)/bin/cfn-lint template.yaml
	$(CHECKOV) --quiet --compact --skip-download --framework cloudformation --file template.yaml
	$(PY) -m infra.deploy.package_size

$(TOOLS)/%/.installed: infra/deploy/requirements-%.txt
	test -x $(TOOLS)/$*/bin/python || $(PYTHON) -m venv $(TOOLS)/$*
	$(TOOLS)/$*/bin/python -m pip install --quiet --disable-pip-version-check -r $<
	touch $@

$(SAM): $(TOOLS)/sam/.installed
$(CHECKOV): $(TOOLS)/checkov/.installed

lint: $(STAMP)
	$(VENV)/bin/cfn-lint template.yaml

$(STAMP): requirements/dev.txt requirements/constraints.txt shared/requirements.txt shared/pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c requirements/constraints.txt -r requirements/dev.txt -e shared
	touch $(STAMP)

clean:
	rm -rf $(VENV) .data .pytest_cache
