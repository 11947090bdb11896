"""The settings Home Assistant may change, and the file that keeps them across restarts.

They are the configuration's personas, default backend and persona, rooms and muted
satellites, changed whole or by a patch of one satellite's mute or one room entry
(`muted_patch`, `room_patch`). The TOML file gives their first values; once changed over the control
channel they live in `<data_dir>/settings.json`, which overrides the TOML file's
values for these keys. The file is replaced atomically (written beside, synced,
renamed): a crash or a kill at any moment leaves either the old settings or the new.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from ..backends.registry import check_configured_backends
from ..config import ConfigError, LocaraConfig, parse_config
from ..errors import StorageFailed
from ..files import replace_file
from ..protocol.control import SetMuted, SetRoom

_LOGGER = logging.getLogger(__name__)

SETTINGS_FILE = "settings.json"
SETTINGS_KEYS = ("default_backend", "default_persona", "personas", "rooms", "muted")


def settings_of(config: LocaraConfig) -> dict[str, Any]:
    """The changeable settings of `config`, as the control channel shows them."""
    return {
        "default_backend": config.sessions.default_backend,
        "default_persona": config.persona().name,
        "personas": [p.model_dump() for p in config.personas],
        "rooms": [r.model_dump(exclude_none=True) for r in config.rooms],
        "muted": list(config.muted),
    }


def with_settings(config: LocaraConfig, changes: dict[str, Any], source: str) -> LocaraConfig:
    """`config` with `changes` (some of SETTINGS_KEYS) applied, checked as a whole."""
    if not isinstance(changes, dict):
        raise ConfigError(f"{source}: settings must be an object")
    unknown = sorted(set(changes) - set(SETTINGS_KEYS))
    if unknown:
        raise ConfigError(
            f"{source}: {unknown[0]!r} is not a setting (settings: {', '.join(SETTINGS_KEYS)})"
        )
    try:  # JSON may carry a lone surrogate ("\ud800"), which no UTF-8 file or model takes
        json.dumps(changes, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError as error:
        raise ConfigError(f"{source}: text must be valid Unicode ({error.reason})") from None
    data = config.model_dump(exclude_none=True)
    for key, value in changes.items():
        if key == "default_backend":
            data["sessions"]["default_backend"] = value
        else:
            data[key] = value
    return parse_config(data, source)


def muted_patch(settings: dict[str, Any], patch: SetMuted) -> dict[str, Any]:
    """The `muted` setting of `settings` with `patch` applied; the others keep their order."""
    muted: list[str] = settings["muted"]
    if not patch.muted:
        return {"muted": [name for name in muted if name != patch.satellite]}
    return {"muted": muted if patch.satellite in muted else [*muted, patch.satellite]}


def room_patch(settings: dict[str, Any], patch: SetRoom) -> dict[str, Any]:
    """The `rooms` setting of `settings` with `patch` applied to the first entry matching
    it (or to a new one); an entry left matching but setting nothing is dropped."""
    rooms: list[dict[str, Any]] = settings["rooms"]
    index = next(
        (i for i, room in enumerate(rooms) if room.get(patch.key) == patch.name), len(rooms)
    )
    room = rooms[index] if index < len(rooms) else {patch.key: patch.name}
    changed = {key: value for key, value in {**room, **patch.changes}.items() if value is not None}
    kept = [changed] if set(changed) - {"satellite", "area"} else []
    return {"rooms": [*rooms[:index], *kept, *rooms[index + 1 :]]}


class SettingsFile:
    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / SETTINGS_FILE

    def apply_to(self, config: LocaraConfig) -> LocaraConfig:
        """`config` with the saved settings, if any; unusable ones are reported and kept."""
        for draft in self.path.parent.glob(f".{self.path.name}.*"):
            draft.unlink(missing_ok=True)  # a write that was cut off: the file is whole
        if not self.path.exists():
            return config
        try:
            saved = json.loads(self.path.read_text(encoding="utf-8"))
            changed = with_settings(config, saved, str(self.path))
            check_configured_backends(changed)
        except (OSError, ValueError, ConfigError) as error:
            _LOGGER.error(
                "Ignoring the settings saved from Home Assistant (the file is kept): %s", error
            )
            return config
        _LOGGER.info("Settings from %s: %s", self.path, ", ".join(sorted(saved)))
        return changed

    def save(self, config: LocaraConfig) -> None:
        """Replace the file with `config`'s settings, whole or not at all.

        StorageFailed when it cannot be written (a full disk, a read-only directory):
        the old file is kept and no draft is left beside it."""
        text = json.dumps(settings_of(config), indent=2, ensure_ascii=False)
        try:
            replace_file(self.path, (text + "\n").encode(), 0o600)
        except OSError as error:
            _LOGGER.error("Could not save the settings to %s: %s", self.path, error)
            raise StorageFailed(
                f"the settings could not be saved ({error.strerror or error}); "
                "the old settings are kept"
            ) from error
