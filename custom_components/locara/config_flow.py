"""Config flow for Locara, and the options flow for the server's own settings.

Every way in (zeroconf, by hand, reconfigure, reauth) is checked by really connecting,
proving both ends with the token (the server first: ours is sent only to a server that
proved it holds the token, and the token itself never is) and subscribing; the entry
keeps the server's proven id and certificate. A zeroconf record moves a configured
entry only to an address where its server proves itself so: anyone can advertise a
server's id. The options are the server's settings: they are sent to it
(`locara-settings`) and it keeps them; the entry stores none of them. Only the
conversation agents for home control are Home Assistant's: the entry's options keep
those.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Mapping
from typing import Any

import voluptuous as vol
from homeassistant.components import conversation
from homeassistant.config_entries import (
    ConfigEntry,
    ConfigEntryState,
    ConfigFlow,
    ConfigFlowResult,
    OptionsFlow,
)
from homeassistant.const import CONF_HOST, CONF_NAME, CONF_PORT, CONF_TOKEN
from homeassistant.core import callback
from homeassistant.helpers import area_registry as ar
from homeassistant.helpers import config_validation as cv
from homeassistant.helpers.selector import (
    AreaSelector,
    BooleanSelector,
    ConversationAgentSelector,
    SelectSelector,
    SelectSelectorConfig,
    SelectSelectorMode,
    TextSelector,
    TextSelectorConfig,
    TextSelectorType,
)
from homeassistant.helpers.service_info.zeroconf import ZeroconfServiceInfo

from .client import (
    CannotConnect,
    InvalidAuth,
    LocaraClient,
    LocaraClientError,
    RequestRefused,
    ServerState,
)
from .const import (
    CONF_AREA_AGENTS,
    CONF_HOME_AGENT,
    DEFAULT_PORT,
    DOMAIN,
    HOME_ASSISTANT_AGENT,
    ZEROCONF_SUFFIX,
)
from .data import LocaraConfigEntry, pin_of
from .protocol import ROOM_SETTINGS

_LOGGER = logging.getLogger(__name__)

TOKEN_SELECTOR = TextSelector(TextSelectorConfig(type=TextSelectorType.PASSWORD))
TOKEN_SCHEMA = vol.Schema({vol.Required(CONF_TOKEN): TOKEN_SELECTOR})
SERVER_SCHEMA = vol.Schema(
    {
        vol.Required(CONF_HOST): TextSelector(),
        vol.Required(CONF_PORT, default=DEFAULT_PORT): cv.port,
        vol.Required(CONF_TOKEN): TOKEN_SELECTOR,
    }
)


async def fetch_state(
    data: Mapping[str, Any], server_id: str | None = None
) -> tuple[ServerState, dict[str, str]]:
    """The state of the server at the entry `data`'s address, by connecting, proving both
    ends with its token and subscribing as the integration will (under `server_id` when
    given), and the pin for the entry."""
    client = LocaraClient(data[CONF_HOST], data[CONF_PORT], data[CONF_TOKEN], server_id=server_id)
    try:
        state = await client.connect()
    finally:
        await client.close()
    return state, pin_of(client)


async def _check(
    data: Mapping[str, Any], server_id: str | None = None
) -> tuple[ServerState | None, dict[str, Any], dict[str, str]]:
    """The server's state and the entry's data with its pin, or the form's errors."""
    try:
        state, pin = await fetch_state(data, server_id)
    except InvalidAuth as error:
        _LOGGER.debug("%s", error)
        return None, {}, {"base": "invalid_auth"}
    except CannotConnect as error:
        _LOGGER.debug("Cannot connect to %s:%s: %s", data[CONF_HOST], data[CONF_PORT], error)
        return None, {}, {"base": "cannot_connect"}
    return state, {**data, **pin}, {}


class LocaraConfigFlow(ConfigFlow, domain=DOMAIN):
    VERSION = 1

    def __init__(self) -> None:
        self._discovered: dict[str, Any] = {}

    @staticmethod
    @callback
    def async_get_options_flow(config_entry: ConfigEntry) -> OptionsFlow:
        return LocaraOptionsFlow()

    async def async_step_user(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        errors: dict[str, str] = {}
        if user_input is not None:
            state, data, errors = await _check(user_input)
            if state is not None:
                await self.async_set_unique_id(state.server_id)
                self._abort_if_unique_id_configured(updates=data)
                return self.async_create_entry(title=state.name, data=data)
        return self.async_show_form(
            step_id="user",
            data_schema=self.add_suggested_values_to_schema(SERVER_SCHEMA, user_input),
            errors=errors,
        )

    async def async_step_zeroconf(self, discovery_info: ZeroconfServiceInfo) -> ConfigFlowResult:
        server_id = discovery_info.properties.get("id")
        if not server_id or discovery_info.port is None:
            return self.async_abort(reason="not_locara_server")
        entry = await self.async_set_unique_id(server_id)
        address = {CONF_HOST: discovery_info.host, CONF_PORT: discovery_info.port}
        if entry is not None:
            return await self._async_follow(entry, address)
        name = discovery_info.name.removesuffix(ZEROCONF_SUFFIX)
        self._discovered = {**address, CONF_NAME: name}
        self.context["title_placeholders"] = {"name": name}
        return await self.async_step_zeroconf_confirm()

    async def _async_follow(self, entry: ConfigEntry, address: dict[str, Any]) -> ConfigFlowResult:
        """A configured server's record: the entry moves to its address only if the server
        there proves it holds the entry's token, under the entry's id. Anyone can
        advertise that id; an impostor gets no proof and no token, and is ignored."""
        if CONF_TOKEN not in entry.data or all(entry.data.get(k) == v for k, v in address.items()):
            self._abort_if_unique_id_configured()  # an ignored entry, or nothing moved
        where = f"{address[CONF_HOST]}:{address[CONF_PORT]}"
        try:
            _, pin = await fetch_state({**entry.data, **address}, entry.unique_id)
        except InvalidAuth as error:
            _LOGGER.warning(
                "Ignored a zeroconf record of the Locara server %s at %s: %s. The entry "
                "stays at %s:%s",
                entry.title, where, error, entry.data[CONF_HOST], entry.data[CONF_PORT],
            )  # fmt: skip
            return self.async_abort(reason="already_configured")
        except CannotConnect as error:
            _LOGGER.debug("Ignored a zeroconf record of %s at %s: %s", entry.title, where, error)
            return self.async_abort(reason="already_configured")
        _LOGGER.info("The Locara server %s proved itself at %s: the entry moves there",
                     entry.title, where)  # fmt: skip
        return self.async_update_reload_and_abort(
            entry, data_updates={**address, **pin}, reason="already_configured"
        )

    async def async_step_zeroconf_confirm(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        errors: dict[str, str] = {}
        address = {CONF_HOST: self._discovered[CONF_HOST], CONF_PORT: self._discovered[CONF_PORT]}
        if user_input is not None:
            # Under the id the record gave: the flow's unique id.
            state, data, errors = await _check(
                {**address, CONF_TOKEN: user_input[CONF_TOKEN]}, self.unique_id
            )
            if state is not None:
                return self.async_create_entry(title=state.name, data=data)
        return self.async_show_form(
            step_id="zeroconf_confirm",
            data_schema=TOKEN_SCHEMA,
            description_placeholders={
                "name": self._discovered[CONF_NAME],
                "host": str(address[CONF_HOST]),
                "port": str(address[CONF_PORT]),
            },
            errors=errors,
        )

    async def async_step_reconfigure(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        entry = self._get_reconfigure_entry()
        errors: dict[str, str] = {}
        if user_input is not None:
            state, data, errors = await _check(user_input)
            if state is not None:
                await self.async_set_unique_id(state.server_id)
                self._abort_if_unique_id_mismatch(reason="wrong_server")
                return self.async_update_reload_and_abort(entry, data_updates=data)
        return self.async_show_form(
            step_id="reconfigure",
            data_schema=self.add_suggested_values_to_schema(
                SERVER_SCHEMA, user_input or entry.data
            ),
            errors=errors,
        )

    async def async_step_reauth(self, entry_data: Mapping[str, Any]) -> ConfigFlowResult:
        return await self.async_step_reauth_confirm()

    async def async_step_reauth_confirm(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        entry = self._get_reauth_entry()
        errors: dict[str, str] = {}
        if user_input is not None:
            state, data, errors = await _check({**entry.data, CONF_TOKEN: user_input[CONF_TOKEN]})
            if state is not None:
                await self.async_set_unique_id(state.server_id)
                self._abort_if_unique_id_mismatch(reason="wrong_server")
                return self.async_update_reload_and_abort(entry, data_updates=data)
        return self.async_show_form(
            step_id="reauth_confirm",
            data_schema=TOKEN_SCHEMA,
            description_placeholders={"name": entry.title},
            errors=errors,
        )


# -- options: the server's settings ------------------------------------------------------

NEW_PERSONA = "__new__"
PERSONA_FIELDS = ("system_prompt", "voice", "language", "home_control", "greeting")


def _select(options: list[str], translation_key: str | None = None) -> SelectSelector:
    """A dropdown; options with a translation key keep their order, others are sorted."""
    if translation_key is None:
        config = SelectSelectorConfig(options=options, mode=SelectSelectorMode.DROPDOWN, sort=True)
    else:
        config = SelectSelectorConfig(
            options=options, mode=SelectSelectorMode.DROPDOWN, translation_key=translation_key
        )
    return SelectSelector(config)


def _persona_schema(state: ServerState, new: bool) -> vol.Schema:
    fields: dict[vol.Marker, Any] = {}
    if new:
        fields[vol.Required(CONF_NAME)] = TextSelector()
    fields |= {
        vol.Optional("system_prompt"): TextSelector(TextSelectorConfig(multiline=True)),
        vol.Optional("voice"): _select(state.voices),
        vol.Required("language", default="en"): TextSelector(),
        vol.Required("home_control", default="home_assistant_first"): _select(
            state.home_control_modes, "home_control"
        ),
        vol.Optional("greeting"): TextSelector(),
    }
    if not new:
        fields[vol.Optional("remove", default=False)] = BooleanSelector()
    return vol.Schema(fields)


class LocaraOptionsFlow(OptionsFlow):
    """A menu: the defaults, a persona, an area's backend and persona, or the
    conversation agent for home control (the default, or an area's)."""

    def __init__(self) -> None:
        # The loaded entry's connection, taken when the flow opens: if the entry is
        # unloaded meanwhile, changes fail as the connection is closed.
        self._client: LocaraClient
        self._persona: str | None = None  # the persona being edited
        self._area: str | None = None  # the area's name, as satellites report it
        self._area_id: str | None = None  # the area whose home-control agent is edited
        self._error = ""  # the server's reason for refusing a change

    @property
    def _state(self) -> ServerState:
        state = self._client.state
        assert state is not None
        return state

    async def _send(self, request: Awaitable[object]) -> dict[str, str]:
        """Wait for a settings change on the server; the form's errors."""
        try:
            await request
        except RequestRefused as error:
            self._error = error.text
            return {"base": "rejected"}
        except LocaraClientError:
            return {"base": "cannot_connect"}
        return {}

    def _form(
        self,
        step_id: str,
        schema: vol.Schema,
        values: Mapping[str, Any],
        errors: dict[str, str],
        **placeholders: str,
    ) -> ConfigFlowResult:
        return self.async_show_form(
            step_id=step_id,
            data_schema=self.add_suggested_values_to_schema(schema, values),
            errors=errors,
            description_placeholders={"error": self._error, **placeholders},
        )

    async def async_step_init(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        entry: LocaraConfigEntry = self.config_entry
        if entry.state is not ConfigEntryState.LOADED or not entry.runtime_data.client.connected:
            return self.async_abort(reason="not_connected")
        self._client = entry.runtime_data.client
        return self.async_show_menu(
            step_id="init",
            menu_options=["defaults", "persona", "area", "home_agent", "area_home_agent"],
        )

    async def async_step_defaults(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        errors: dict[str, str] = {}
        if user_input is not None:
            errors = await self._send(self._client.change_settings(user_input))
            if not errors:
                return self._keep_options()
        state = self._state
        schema = vol.Schema(
            {
                vol.Required("default_backend"): _select(state.backends),
                vol.Required("default_persona"): _select(state.personas),
            }
        )
        return self._form("defaults", schema, user_input or state.settings, errors)

    async def async_step_persona(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        if user_input is not None:
            chosen = user_input["persona"]
            self._persona = None if chosen == NEW_PERSONA else chosen
            return await (
                self.async_step_persona_new()
                if self._persona is None
                else self.async_step_persona_edit()
            )
        options = [*self._state.personas, NEW_PERSONA]
        schema = vol.Schema({vol.Required("persona"): _select(options, "persona")})
        return self.async_show_form(step_id="persona", data_schema=schema)

    async def async_step_persona_new(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        return await self._persona_step("persona_new", user_input)

    async def async_step_persona_edit(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        return await self._persona_step("persona_edit", user_input)

    async def _persona_step(
        self, step_id: str, user_input: dict[str, Any] | None
    ) -> ConfigFlowResult:
        state = self._state
        personas: list[dict[str, Any]] = state.settings.get("personas", [])
        current = next((p for p in personas if p["name"] == self._persona), None)
        errors: dict[str, str] = {}
        if user_input is not None:
            if current is None:
                name = user_input[CONF_NAME].strip()
                if not name:
                    errors[CONF_NAME] = "name_required"
                elif name in state.personas or name == NEW_PERSONA:
                    errors[CONF_NAME] = "persona_exists"
                changed = [*personas, _persona(name, user_input, {})]
            elif user_input.get("remove"):
                changed = [p for p in personas if p is not current]
            else:
                persona = _persona(current["name"], user_input, current)
                changed = [persona if p is current else p for p in personas]
            if not errors:
                personas = [_present(p) for p in changed]
                errors = await self._send(self._client.change_settings({"personas": personas}))
            if not errors:
                return self._keep_options()
        schema = _persona_schema(state, new=current is None)
        values = user_input or (current or {})
        return self._form(step_id, schema, values, errors, persona=self._persona or "")

    async def async_step_area(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        errors: dict[str, str] = {}
        if user_input is not None:
            area = ar.async_get(self.hass).async_get_area(user_input["area"])
            if area is not None:
                self._area = area.name
                return await self.async_step_area_room()
            errors["area"] = "unknown_area"
        schema = vol.Schema({vol.Required("area"): AreaSelector()})
        return self.async_show_form(step_id="area", data_schema=schema, errors=errors)

    async def async_step_area_room(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        assert self._area is not None
        state = self._state
        rooms: list[dict[str, Any]] = state.settings.get("rooms", [])
        errors: dict[str, str] = {}
        if user_input is not None:
            # Both keys: one left empty in the form clears it (the defaults then apply).
            changes = {key: user_input.get(key) for key in ROOM_SETTINGS}
            errors = await self._send(self._client.set_room(changes, area=self._area))
            if not errors:
                return self._keep_options()
        schema = vol.Schema(
            {
                vol.Optional("backend"): _select(state.backends),
                vol.Optional("persona"): _select(state.personas),
            }
        )
        current = next((room for room in rooms if room.get("area") == self._area), {})
        return self._form("area_room", schema, user_input or current, errors, area=self._area)

    # -- the conversation agents for home control: the entry's own options -----------

    def _keep_options(self, changes: Mapping[str, Any] | None = None) -> ConfigFlowResult:
        """End the flow; the entry's options stay as they are but for `changes`."""
        return self.async_create_entry(data={**self.config_entry.options, **(changes or {})})

    def _agent_errors(self, field: str, agent_id: str | None) -> dict[str, str]:
        if agent_id and conversation.async_get_agent_info(self.hass, agent_id) is None:
            return {field: "unknown_agent"}
        return {}

    async def async_step_home_agent(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        errors: dict[str, str] = {}
        if user_input is not None:
            agent_id = user_input[CONF_HOME_AGENT]
            errors = self._agent_errors(CONF_HOME_AGENT, agent_id)
            if not errors:
                return self._keep_options({CONF_HOME_AGENT: agent_id})
        schema = vol.Schema(
            {
                vol.Required(
                    CONF_HOME_AGENT, default=HOME_ASSISTANT_AGENT
                ): ConversationAgentSelector()
            }
        )
        values = user_input or self.config_entry.options
        return self._form("home_agent", schema, values, errors)

    async def async_step_area_home_agent(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        errors: dict[str, str] = {}
        if user_input is not None:
            if ar.async_get(self.hass).async_get_area(user_input["area"]) is not None:
                self._area_id = user_input["area"]
                return await self.async_step_area_home_agent_choice()
            errors["area"] = "unknown_area"
        schema = vol.Schema({vol.Required("area"): AreaSelector()})
        return self.async_show_form(
            step_id="area_home_agent",
            data_schema=schema,
            errors=errors,
            description_placeholders={"chosen": self._area_agents_text()},
        )

    async def async_step_area_home_agent_choice(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        assert self._area_id is not None
        area_agents: dict[str, str] = dict(self.config_entry.options.get(CONF_AREA_AGENTS, {}))
        errors: dict[str, str] = {}
        if user_input is not None:
            # Left empty, the area's choice is cleared: the default agent answers there.
            agent_id = user_input.get("agent")
            errors = self._agent_errors("agent", agent_id)
            if not errors:
                if agent_id:
                    area_agents[self._area_id] = agent_id
                else:
                    area_agents.pop(self._area_id, None)
                return self._keep_options({CONF_AREA_AGENTS: area_agents})
        schema = vol.Schema({vol.Optional("agent"): ConversationAgentSelector()})
        current = area_agents.get(self._area_id)
        values = user_input or ({"agent": current} if current else {})
        area = ar.async_get(self.hass).async_get_area(self._area_id)
        name = area.name if area is not None else self._area_id
        return self._form(
            "area_home_agent_choice", schema, values, errors,
            area=name, default=self._agent_name(self.config_entry.options.get(CONF_HOME_AGENT)),
        )  # fmt: skip

    def _agent_name(self, agent_id: str | None) -> str:
        """The agent's name as Home Assistant shows it (the built-in one's for None), or
        its id when it is gone."""
        agent_id = agent_id or HOME_ASSISTANT_AGENT
        info = conversation.async_get_agent_info(self.hass, agent_id)
        return info.name if info is not None else agent_id

    def _area_agents_text(self) -> str:
        """The areas that have an agent of their own, as the form lists them."""
        areas = ar.async_get(self.hass)
        chosen = []
        for area_id, agent_id in self.config_entry.options.get(CONF_AREA_AGENTS, {}).items():
            area = areas.async_get_area(area_id)
            chosen.append(f"{area.name if area else area_id}: {self._agent_name(agent_id)}")
        return "; ".join(sorted(chosen)) or "—"


def _persona(name: str, form: dict[str, Any], current: dict[str, Any]) -> dict[str, Any]:
    """A persona from its form; what the form does not show (`voice_prompt`) is kept, and
    a field left empty falls back to the server's default."""
    persona = {k: v for k, v in current.items() if k not in PERSONA_FIELDS}
    persona |= {key: form[key] for key in PERSONA_FIELDS if form.get(key)}
    persona["name"] = name
    return persona


def _present(persona: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in persona.items() if value is not None}
