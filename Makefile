# The README's two commands: `make serve` and `make test`.
VENV ?= .venv
ARGS ?=
# Home Assistant's tests (tests/home_assistant) run after the main suite, on Home
# Assistant's own Python, with their own pytest config, twice: in .venv-ha on the newest
# Home Assistant and in .venv-ha-oldest on the oldest supported (hacs.json's);
# HA_ARGS reaches both.
HA_VENV ?= .venv-ha
HA_OLDEST_VENV ?= .venv-ha-oldest
HA_ARGS ?=

.PHONY: serve test test-fast lint lint-ha

serve:
	scripts/setup.sh server
	$(VENV)/bin/locara-wyoming serve $(ARGS)

# Everything: lint, both tiers of the suite, and Home Assistant's lint and tests (on the
# newest and the oldest Home Assistant).
test:
	scripts/setup.sh test
	$(MAKE) lint lint-ha
	$(VENV)/bin/python -m pytest $(ARGS)
	$(HA_VENV)/bin/python -m pytest -c tests/home_assistant/pytest.ini tests/home_assistant $(HA_ARGS)
	$(HA_OLDEST_VENV)/bin/python -m pytest -c tests/home_assistant/pytest.ini tests/home_assistant $(HA_ARGS)

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
