# The README's two commands: `make serve` and `make test`.
VENV ?= .venv
ARGS ?=

.PHONY: serve test lint

serve:
	scripts/setup.sh server
	$(VENV)/bin/locara-wyoming serve $(ARGS)

test:
	scripts/setup.sh test
	$(MAKE) lint
	$(VENV)/bin/python -m pytest $(ARGS)

lint:
	$(VENV)/bin/ruff check locara_wyoming satellite tests
	$(VENV)/bin/ruff format --check locara_wyoming satellite tests
	$(VENV)/bin/mypy
