PY ?= python3

.PHONY: test lint bench format

test:
	$(PY) -m pytest -q

lint:
	$(PY) -m ruff check mixinfer tests scripts
	$(PY) -m ruff format --check mixinfer tests scripts
	$(PY) -m mypy mixinfer

format:
	$(PY) -m ruff format mixinfer tests scripts
	$(PY) -m ruff check --fix mixinfer tests scripts

bench:
	$(PY) scripts/bench_speed.py
	$(PY) scripts/bench_accuracy.py
	$(PY) scripts/bench_trust.py
	$(PY) scripts/bench_dask.py
