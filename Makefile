# The README's two commands: `make serve` and `make test`.
VENV ?= .venv
ARGS ?=
# Home Assistant's tests (tests/home_assistant) run after the main suite, in .venv-ha on
# Home Assistant's own Python, with their own pytest config; HA_ARGS reaches them.
HA_VENV ?= .venv-ha
HA_ARGS ?=

.PHONY: serve test test-fast lint lint-ha

serve:
	scripts/setup.sh server
	$(VENV)/bin/locara-wyoming serve $(ARGS)

# Everything: lint, both tiers of the suite, and Home Assistant's lint and tests.
test:
	scripts/setup.sh test
	$(MAKE) lint lint-ha
	$(VENV)/bin/python -m pytest $(ARGS)
	$(HA_VENV)/bin/python -m pytest -c tests/home_assistant/pytest.ini tests/home_assistant $(HA_ARGS)

# The tests that need no model (tests/support/tiers.py), from the base install: seconds.
test-fast:
	scripts/setup.sh fast
	$(VENV)/bin/python -m pytest -m "not models" $(ARGS)

# The server, the satellite and the tests, from .venv alone.
lint:
	$(VENV)/bin/ruff check locara_wyoming locara_satellite tests custom_components
	$(VENV)/bin/ruff format --check locara_wyoming locara_satellite tests custom_components
	$(VENV)/bin/mypy

# The Home Assistant integration's strict types, checked against Home Assistant itself.
lint-ha:
	$(HA_VENV)/bin/python -m mypy --strict --python-version 3.13 --follow-imports=silent \
		custom_components/locara
