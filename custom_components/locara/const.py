"""Constants of the Locara integration."""

from __future__ import annotations

DOMAIN = "locara"

DEFAULT_PORT = 10700
ZEROCONF_SUFFIX = "._wyoming._tcp.local."

# What an entry keeps of its server as it last proved itself (not secret): the id it must
# prove itself under again, and its TLS certificate's fingerprint.
CONF_SERVER_ID = "server_id"
CONF_FINGERPRINT = "fingerprint"

# What the server's voice sessions may be doing (`locara-satellite` pushes).
SATELLITE_STATES = ["idle", "listening", "thinking", "speaking"]

# The actions' field naming a config entry, as Home Assistant names it (homeassistant.const
# has it only from 2025.9, after the oldest release this integration supports).
ATTR_CONFIG_ENTRY_ID = "config_entry_id"

# Home Assistant's own conversation agent, which answers the server's home requests.
HOME_ASSISTANT_AGENT = "conversation.home_assistant"

# The entry's options (Home Assistant's side; the server keeps its own settings): the
# conversation agent that answers home requests instead of HOME_ASSISTANT_AGENT, by
# default and per area ({area id: agent id}).
CONF_HOME_AGENT = "home_agent"
CONF_AREA_AGENTS = "area_agents"


def signal_new_satellite(entry_id: str) -> str:
    """The dispatcher signal sent when a config entry's server reports a new satellite."""
    return f"{DOMAIN}_{entry_id}_new_satellite"
