# sciatica-triage: every command a user types is a target here. `make help` lists them.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
# N, SEED, SETTING and COST_RATIO are forwarded only when given: their defaults live in one place
# each, TrainConfig (training/config.py) for `make train` and `python -m vignettes` for `make data`.
SEED_SETTING_ARGS = $(if $(SEED),--seed $(SEED)) $(if $(SETTING),--setting $(SETTING))
PORT   ?= 5001
export MLFLOW_TRACKING_URI ?= sqlite:///$(CURDIR)/mlflow.db
# MLflow 3 sends usage telemetry to its project unless told not to. Research code on clinical
# machines opts in, not out: every target runs with it off unless you set it yourself.
export MLFLOW_DISABLE_TELEMETRY ?= true

.DEFAULT_GOAL := help
.PHONY: help setup train test test-fast data bench docs lint format ui serve cds clean sensitivity

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

# uv (from PyPI, into the venv) resolves and installs the same packages as pip in a fraction of
# the time; if it cannot be had, pip does the install. --compile-bytecode writes the .pyc files
# at install time, as pip does: uv does not by default, and where PYTHONDONTWRITEBYTECODE is set
# (as on the CI machine) every Python start would compile scipy, pandas and MLflow from source
# again, about 4 s of each CLI call and each test worker (measured: predict 7.1 s -> 2.3 s).
$(STAMP): pyproject.toml
	@echo ">> setting up $(VENV) (first run only; about a minute)"
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet uv && $(BIN)/uv pip install --quiet --compile-bytecode --python $(BIN)/python -e '.[dev]' \
		|| $(BIN)/pip install --quiet -e '.[dev]'
	@touch $(STAMP)

setup: $(STAMP) ## create .venv and install the project (every target does this itself)

# mlcroissant, the Croissant validator, gets an environment of its own: it brings pandas-stubs,
# under which mypy would report hundreds of errors in this code base if it sat in .venv.
CROISSANT_VENV  := .venv-croissant
CROISSANT_STAMP := $(CROISSANT_VENV)/.installed-stamp
CROISSANT_PIN   := mlcroissant[parquet]==1.1.1
$(CROISSANT_STAMP): $(STAMP)
	@echo ">> setting up $(CROISSANT_VENV) for the Croissant validator (first run only)"
	{ $(BIN)/uv venv --quiet --python $(BIN)/python $(CROISSANT_VENV) \
		&& $(BIN)/uv pip install --quiet --compile-bytecode --python $(CROISSANT_VENV)/bin/python '$(CROISSANT_PIN)'; } \
	|| { $(PYTHON) -m venv --clear $(CROISSANT_VENV) \
		&& $(CROISSANT_VENV)/bin/pip install --quiet '$(CROISSANT_PIN)'; }
	@touch $@
# the suites run the validator test and fail, rather than skip it, when the validator is missing.
# They also keep compiled bytecode (__pycache__, ignored by git) where PYTHONDONTWRITEBYTECODE
# is set: each worker and each of the ~60 command-line starts would otherwise compile the
# project's modules, and pytest rewrite every test module's asserts, anew.
TEST_ENV = MLCROISSANT_PYTHON=$(CURDIR)/$(CROISSANT_VENV)/bin/python SCIATICA_REQUIRE_MLCROISSANT=1 \
	PYTHONDONTWRITEBYTECODE=

train: $(STAMP) ## generate data, train and compare every candidate in MLflow, register the champion (N=, SEED=, SETTING=, COST_RATIO=, QUICK=1 for a tenth of the data)
	$(BIN)/python -m training $(if $(QUICK),--quick) $(if $(N),--n-train $(N)) $(SEED_SETTING_ARGS) \
		$(if $(COST_RATIO),--cost-ratio $(COST_RATIO))

test: $(STAMP) $(CROISSANT_STAMP) ## run the whole test suite
	$(TEST_ENV) $(BIN)/python -m pytest -n 2 --dist loadfile -q

test-fast: $(STAMP) $(CROISSANT_STAMP) ## the tests that train and serve nothing (pytest -m "not slow"), in well under a minute
	$(TEST_ENV) $(BIN)/python -m pytest -n 2 --dist loadfile -q -m "not slow"

# `make data` writes files for your own analyses, cut by fraction. `make train` never reads
# them: it draws its splits by count, in memory, from its seed, so a run is reproduced by its
# settings alone (they are logged to MLflow) without a copy of the data.
data: $(STAMP) $(CROISSANT_STAMP) ## write a seeded train/validation/test dataset (Parquet, or FHIR ndjson with FORMAT=fhir) with sample narratives and a dataset card (Croissant, datasheet, validated with mlcroissant) to data/
	$(BIN)/python -m vignettes $(if $(N),--n $(N)) $(SEED_SETTING_ARGS) $(if $(FORMAT),--format $(FORMAT)) --out data
	@if [ -f data/croissant.json ]; then echo ">> validating data/croissant.json with mlcroissant"; \
		$(CROISSANT_VENV)/bin/python vignettes/croissant_validate.py data/croissant.json; fi

sensitivity: $(STAMP) ## how much the results depend on the assumptions: N= perturbed worlds (default 20), tornado plots in MLflow
	$(BIN)/python -m training.sensitivity $(if $(N),--worlds $(N)) $(if $(SEED),--seed $(SEED))

bench: $(STAMP) ## benchmarks: generator and serving speed and memory, with ratios to references
	$(BIN)/python -m tests.bench

docs: $(STAMP) ## regenerate docs/interface.md from the code (tests fail while it is stale)
	$(BIN)/python docs/interface.py

lint: $(STAMP) ## ruff lint and format check, mypy on the public API
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy vignettes model serve training

format: $(STAMP) ## apply ruff's formatter and safe fixes
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

ui: $(STAMP) ## start the MLflow UI on http://127.0.0.1:5000
	@echo ">> the comparison, in MLflow's model-training view: http://127.0.0.1:5000/#/experiments/1/runs?viewStateShareKey=comparison&workflowType=machine_learning"
	$(BIN)/mlflow ui --backend-store-uri $(MLFLOW_TRACKING_URI) --host 127.0.0.1 --port 5000

serve: $(STAMP) ## serve the champion over HTTP on 127.0.0.1:$(PORT) with mlflow models serve (PORT=, default 5001)
	@# mlflow starts `uvicorn` by name: the project's .venv/bin goes first on PATH
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/mlflow models serve -m models:/sciatica-triage@champion \
		--env-manager local --host 127.0.0.1 --port $(PORT)

# `make cds` listens on 5002 unless PORT is given (PORT's default above is make serve's 5001).
CDS_PORT = $(if $(filter file,$(origin PORT)),5002,$(PORT))
cds: $(STAMP) ## serve the CDS Hooks 2.0 service on 127.0.0.1 (PORT=, default 5002; SCIATICA_CDS_ISSUERS= trusts JWT issuers)
	$(BIN)/python -m serve.cds --port $(CDS_PORT)

clean: ## remove generated data, tracking store, caches (keeps .venv)
	rm -rf data mlruns mlartifacts mlflow.db mlflow.db.aliases.json bench-results .pytest_cache .hypothesis .ruff_cache .mypy_cache
	find . -name __pycache__ -not -path './.venv/*' -exec rm -rf {} +
