# Two commands do all set-up: `make run` and `make test` (see README.md).
PYTHON ?= python3

.PHONY: run test test-all setup catalog gallery

run:
	$(PYTHON) dev.py run

test:
	$(PYTHON) dev.py test -m "not slow"

test-all:
	$(PYTHON) dev.py test

setup:
	$(PYTHON) dev.py setup

catalog:
	.venv/bin/python -m models.catalog --write

gallery:
	.venv/bin/python -m models.gallery --write
