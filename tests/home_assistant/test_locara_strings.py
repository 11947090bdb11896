"""The integration's texts: every entity, state, action, field, error and abort the code
uses has its English text, and translations/en.json is strings.json."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

from custom_components.locara import select, sensor, switch

COMPONENT = Path(sensor.__file__).parent
STRINGS: dict[str, Any] = json.loads((COMPONENT / "strings.json").read_text(encoding="utf-8"))


def source(name: str) -> str:
    return (COMPONENT / name).read_text(encoding="utf-8")


def test_the_english_translation_is_strings_json() -> None:
    english = json.loads((COMPONENT / "translations" / "en.json").read_text(encoding="utf-8"))
    assert english == STRINGS


def test_every_entity_and_state_has_a_name_and_an_icon() -> None:
    icons = json.loads(source("icons.json"))["entity"]
    platforms = {
        "sensor": [*sensor.SERVER_SENSORS, *sensor.SATELLITE_SENSORS],
        "select": list(select.SATELLITE_SELECTS),
        "switch": [switch.MUTE],
    }
    for platform, descriptions in platforms.items():
        for description in descriptions:
            key = description.translation_key
            assert key is not None, description
            assert STRINGS["entity"][platform][key]["name"], (platform, key)
            assert icons[platform][key]["default"].startswith("mdi:"), (platform, key)
            options = getattr(description, "options", None) or []
            assert set(options) == set(STRINGS["entity"][platform][key].get("state", {})), key


def test_every_action_and_field_is_described() -> None:
    actions = yaml.safe_load(source("services.yaml"))
    assert (
        set(actions)
        == set(STRINGS["services"])
        == {
            "announce",
            "start_conversation",
            "add_satellite",
            "remove_satellite",
        }
    )
    assert set(json.loads(source("icons.json"))["services"]) == set(actions)
    for action, spec in actions.items():
        texts = STRINGS["services"][action]
        assert texts["name"] and texts["description"], action
        assert set(spec["fields"]) == set(texts["fields"]), action


def test_every_error_abort_and_exception_the_code_raises_is_translated() -> None:
    config_flow, options_flow = source("config_flow.py").split("# -- options")
    for flow, code in (("config", config_flow), ("options", options_flow)):
        errors = set(re.findall(r'"base": "(\w+)"', code))
        errors |= set(re.findall(r'errors\[[\w"]+\] = "(\w+)"', code))
        errors |= set(re.findall(r'return \{\w+: "(\w+)"\}', code))
        aborts = set(re.findall(r'reason="(\w+)"', code))
        assert errors and errors <= set(STRINGS[flow]["error"]), (flow, errors)
        assert aborts <= set(STRINGS[flow]["abort"]), (flow, aborts)
    steps = set(re.findall(r'step_id="(\w+)"', config_flow))
    assert steps <= set(STRINGS["config"]["step"]), steps
    options_steps = set(re.findall(r"async_step_(\w+)", options_flow))
    assert options_steps == set(STRINGS["options"]["step"]), options_steps
    menu = set(STRINGS["options"]["step"]["init"]["menu_options"])
    assert menu == {"defaults", "persona", "area", "home_agent", "area_home_agent"}
    raised = {
        key
        for name in ("services.py", "entity.py")
        for key in re.findall(r'translation_key="(\w+)"', source(name))
    }
    assert raised and raised <= set(STRINGS["exceptions"]), raised
