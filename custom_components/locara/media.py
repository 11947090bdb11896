"""Audio files for announcements: what Home Assistant can resolve, as bytes for the
server, and the integration's own chime.

The server decodes the files (WAV, MP3, FLAC, Ogg) and converts them for each satellite;
Home Assistant needs no FFmpeg for it. A media-source id is resolved by Home Assistant;
a local media file is read from disk, anything else (a text-to-speech id, a path on
Home Assistant's own web server, a URL) is fetched over HTTP as a media player would.
"""

from __future__ import annotations

from pathlib import Path

import aiohttp
from homeassistant.components import media_source
from homeassistant.components.media_player.browse_media import async_process_play_media_url
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers.aiohttp_client import async_get_clientsession

from .const import DOMAIN

CHIME = Path(__file__).parent / "chime.wav"
"""The default chime before an announcement: two tones made by scripts/make_chime.py."""
MAX_MEDIA_BYTES = 1024 * 1024 - 64 * 1024
"""The chime and the file together must fit the server's payload limit
(`limits.max_payload_bytes`, 1 MiB by default) with room to spare."""
FETCH_TIMEOUT_S = 30.0


class MediaTooLarge(HomeAssistantError):
    """An announcement's audio over MAX_MEDIA_BYTES."""


async def async_read_chime(hass: HomeAssistant) -> bytes:
    return await hass.async_add_executor_job(CHIME.read_bytes)


async def async_fetch_audio(hass: HomeAssistant, media_id: str) -> bytes:
    """The bytes of the audio file `media_id` names: a media-source id, a path on Home
    Assistant's web server, or a URL."""
    if media_source.is_media_source_id(media_id):
        try:
            media = await media_source.async_resolve_media(hass, media_id, None)
        except media_source.Unresolvable as error:
            raise _media_error(media_id, str(error)) from error
        if media.path is not None:  # local media: no need to go through the web server
            return await hass.async_add_executor_job(_read_file, media.path, media_id)
        media_id = media.url
    url = async_process_play_media_url(hass, media_id)
    session = async_get_clientsession(hass)
    try:
        async with session.get(url, timeout=aiohttp.ClientTimeout(total=FETCH_TIMEOUT_S)) as got:
            got.raise_for_status()
            data = bytearray()
            async for chunk in got.content.iter_chunked(64 * 1024):
                data += chunk
                if len(data) > MAX_MEDIA_BYTES:
                    break
    except (aiohttp.ClientError, TimeoutError) as error:
        raise _media_error(media_id, repr(error)) from error
    _check_size(data, media_id)
    return bytes(data)


def _read_file(path: Path, media_id: str) -> bytes:
    try:
        with path.open("rb") as file:
            data = file.read(MAX_MEDIA_BYTES + 1)
    except OSError as error:
        raise _media_error(media_id, str(error)) from error
    _check_size(data, media_id)
    return data


def _check_size(data: bytes | bytearray, media_id: str) -> None:
    if len(data) > MAX_MEDIA_BYTES:
        raise MediaTooLarge(
            translation_domain=DOMAIN,
            translation_key="media_too_large",
            translation_placeholders={"media": media_id, "limit": str(MAX_MEDIA_BYTES // 1024)},
        )


def _media_error(media_id: str, error: str) -> HomeAssistantError:
    return HomeAssistantError(
        translation_domain=DOMAIN,
        translation_key="media_unavailable",
        translation_placeholders={"media": media_id, "error": error},
    )
