"""Each satellite as an Assist satellite: Home Assistant's announcements, conversations
started from automations and questions (`assist_satellite.announce`,
`.start_conversation`, `.ask_question`), spoken in the room's persona voice by the
server; the entity's state is the room's, as the server pushes it.

A Locara room does not run Home Assistant's Assist pipeline (the server hears, thinks
and speaks itself), so the entity does not use the pipeline's text-to-speech or the
pipeline's conversation agent: a message goes to the server as text, a media file and
the chime as audio files (media.py), and a question's answer comes back as the room's
words, which Home Assistant's own matching (`_question_response_to_answer`, as for its
own satellites) turns into the answer.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any, TypeVar

from homeassistant.components.assist_pipeline import PipelineEvent
from homeassistant.components.assist_satellite import (
    AssistSatelliteAnswer,
    AssistSatelliteConfiguration,
    AssistSatelliteEntity,
    AssistSatelliteEntityDescription,
    AssistSatelliteEntityFeature,
)
from homeassistant.components.assist_satellite.entity import AssistSatelliteState
from homeassistant.core import HomeAssistant, callback
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .client import LocaraClientError, RequestRefused
from .const import DOMAIN
from .data import LocaraConfigEntry
from .entity import LocaraSatelliteEntity, async_add_satellite_entities
from .media import MAX_MEDIA_BYTES, MediaTooLarge, async_fetch_audio, async_read_chime
from .protocol import MAX_EXTRA_PROMPT_CHARS

PARALLEL_UPDATES = 0

Answer = TypeVar("Answer")

ASSIST_SATELLITE = AssistSatelliteEntityDescription(key="assist_satellite", name=None)

# The room's state (`locara-satellite` pushes) as Home Assistant names a satellite's.
ROOM_STATES = {
    "idle": AssistSatelliteState.IDLE,
    "listening": AssistSatelliteState.LISTENING,
    "thinking": AssistSatelliteState.PROCESSING,
    "speaking": AssistSatelliteState.RESPONDING,
}


async def async_setup_entry(
    hass: HomeAssistant,
    entry: LocaraConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    async_add_satellite_entities(
        hass,
        entry,
        async_add_entities,
        lambda name: [LocaraAssistSatellite(entry, name, ASSIST_SATELLITE)],
    )


class LocaraAssistSatellite(LocaraSatelliteEntity, AssistSatelliteEntity):
    """A Locara room as Home Assistant's Assist satellite."""

    _attr_supported_features = (
        AssistSatelliteEntityFeature.ANNOUNCE | AssistSatelliteEntityFeature.START_CONVERSATION
    )

    async def async_added_to_hass(self) -> None:
        await super().async_added_to_hass()
        self._pushed()

    @callback
    def _pushed(self) -> None:
        room = self.record.state if self.record.connected else "idle"
        self._set_state(ROOM_STATES.get(room, AssistSatelliteState.IDLE))

    # -- Home Assistant's actions ---------------------------------------------------------

    async def async_internal_announce(
        self,
        message: str | None = None,
        media_id: str | None = None,
        preannounce: bool = True,
        preannounce_media_id: str | None = None,
    ) -> None:
        """`assist_satellite.announce`: `message` in the room's persona voice, or
        `media_id` played (showing `message`), after the chime unless `preannounce` is
        off; returns once the satellite has played it."""
        chime, media = await self._audio(media_id, preannounce, preannounce_media_id)
        await self._asked(
            self.client.announce(message or "", self.satellite, chime=chime, media=media)
        )

    async def async_internal_start_conversation(
        self,
        start_message: str | None = None,
        start_media_id: str | None = None,
        extra_system_prompt: str | None = None,
        preannounce: bool = True,
        preannounce_media_id: str | None = None,
    ) -> None:
        """`assist_satellite.start_conversation`: announce, then, once it has played, the
        room listens without its wake word and its persona answers, knowing what it said
        (the message joins the room's conversation) and told `extra_system_prompt`."""
        if extra_system_prompt is not None and len(extra_system_prompt) > MAX_EXTRA_PROMPT_CHARS:
            raise ServiceValidationError(
                translation_domain=DOMAIN,
                translation_key="extra_prompt_too_long",
                translation_placeholders={"limit": str(MAX_EXTRA_PROMPT_CHARS)},
            )
        chime, media = await self._audio(start_media_id, preannounce, preannounce_media_id)
        await self._asked(
            self.client.announce(
                start_message or "",
                self.satellite,
                listen=True,
                chime=chime,
                media=media,
                extra_system_prompt=extra_system_prompt or None,
            )
        )

    async def async_internal_ask_question(
        self,
        question: str | None = None,
        question_media_id: str | None = None,
        preannounce: bool = True,
        preannounce_media_id: str | None = None,
        answers: list[dict[str, Any]] | None = None,
    ) -> AssistSatelliteAnswer | None:
        """`assist_satellite.ask_question`: announce, listen, and match the room's next
        words (which its persona does not answer) against `answers` as Home Assistant
        does for its own satellites; the words alone when no answers are given."""
        chime, media = await self._audio(question_media_id, preannounce, preannounce_media_id)
        text = await self._asked(
            self.client.ask(question or "", self.satellite, chime=chime, media=media)
        )
        if not answers:
            return AssistSatelliteAnswer(id=None, sentence=text)
        return self._question_response_to_answer(text, answers)

    async def _audio(
        self, media_id: str | None, preannounce: bool, preannounce_media_id: str | None
    ) -> tuple[bytes, bytes]:
        """The announcement's chime and media file (none: the message is spoken)."""
        chime = b""
        if preannounce:
            chime = await (
                async_fetch_audio(self.hass, preannounce_media_id)
                if preannounce_media_id
                else async_read_chime(self.hass)
            )
        media = await async_fetch_audio(self.hass, media_id) if media_id else b""
        if len(chime) + len(media) > MAX_MEDIA_BYTES:
            raise MediaTooLarge(
                translation_domain=DOMAIN,
                translation_key="media_too_large",
                translation_placeholders={
                    "media": media_id or "",
                    "limit": str(MAX_MEDIA_BYTES // 1024),
                },
            )
        return chime, media

    async def _asked(self, request: Awaitable[Answer]) -> Answer:
        """The server's answer; its refusal as an error that says why."""
        try:
            return await request
        except RequestRefused as error:
            if error.code in ("no-answer", "not-found"):
                raise HomeAssistantError(
                    translation_domain=DOMAIN,
                    translation_key="no_answer" if error.code == "no-answer" else "satellite_gone",
                    translation_placeholders={"satellite": self.satellite, "error": error.text},
                ) from error
            raise _request_failed(error) from error
        except LocaraClientError as error:
            raise _request_failed(error) from error

    # -- what Assist satellites must have, and a Locara room does not use -----------------

    @callback
    def async_get_configuration(self) -> AssistSatelliteConfiguration:
        """Wake words are the satellite's own (`locara-satellite --wake-word`)."""
        raise NotImplementedError

    async def async_set_configuration(self, config: AssistSatelliteConfiguration) -> None:
        raise NotImplementedError

    def on_pipeline_event(self, event: PipelineEvent) -> None:
        """Never called: a Locara room runs no Assist pipeline in Home Assistant."""


def _request_failed(error: LocaraClientError) -> HomeAssistantError:
    return HomeAssistantError(
        translation_domain=DOMAIN,
        translation_key="request_failed",
        translation_placeholders={"error": str(error)},
    )
