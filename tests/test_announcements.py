"""Announcements with a chime and audio files, and questions whose answer goes back to
the control channel: the decoder on real files of each format, then a real server with
real satellites."""

from __future__ import annotations

import asyncio
import io
import time
import wave
from collections.abc import AsyncIterator, Callable

import numpy as np
import pytest

from locara_wyoming.audio_format import PcmFormat
from locara_wyoming.bench.server_process import ServerProcess
from locara_wyoming.client.scripted import ScriptedSatellite
from locara_wyoming.errors import TooLarge
from locara_wyoming.media import MediaError, decode_media
from locara_wyoming.sessions.link import ANNOUNCE_PLAYED_MARGIN_S

from .support.control_client import ControlClient, control, token_of
from .support.rooms import satellite
from .support.servers import TEST_CONFIG
from .support.speech import Speech

pytestmark = pytest.mark.models  # PyAV comes with the server's extra (faster-whisper)

RATE = 16_000
VOICE = PcmFormat(22050, 2, 1)  # the test voice's format (Piper's joe)


def tone(frequency: float, seconds: float, rate: int = RATE) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.5 * np.sin(2 * np.pi * frequency * t) * 32767).astype("<i2")


def wav_file(samples: np.ndarray, rate: int = RATE) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(samples.tobytes())
    return out.getvalue()


def encoded(samples: np.ndarray, container: str, codec: str, rate: int = RATE) -> bytes:
    """`samples` encoded by FFmpeg's own encoders, as a real file of that format."""
    import av

    out = io.BytesIO()
    with av.open(out, "w", format=container) as file:
        stream = file.add_stream(codec, rate=rate)
        stream.layout = "mono"  # type: ignore[union-attr]
        frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = RATE
        resampler = av.AudioResampler(
            format=stream.format.name,  # type: ignore[union-attr]
            layout="mono",
            rate=rate,
            frame_size=stream.codec_context.frame_size or None,  # type: ignore[union-attr]
        )
        for converted in [*resampler.resample(frame), *resampler.resample(None)]:
            for packet in stream.encode(converted):  # type: ignore[union-attr]
                file.mux(packet)
        for packet in stream.encode(None):  # type: ignore[union-attr]
            file.mux(packet)
    return out.getvalue()


def peak_hz(samples: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(samples.astype(np.float64)))
    return float(np.fft.rfftfreq(len(samples), 1 / rate)[np.argmax(spectrum)])


@pytest.mark.parametrize(
    ("name", "make"),
    [
        ("wav", lambda s: wav_file(s)),
        ("mp3", lambda s: encoded(s, "mp3", "libmp3lame")),
        ("flac", lambda s: encoded(s, "flac", "flac")),
        ("ogg-opus", lambda s: encoded(s, "ogg", "libopus", 48_000)),
    ],
)
def test_each_format_decodes_to_the_voice_format(
    name: str, make: Callable[[np.ndarray], bytes]
) -> None:
    pcm = decode_media(make(tone(440, 1.0)), VOICE)
    samples = np.frombuffer(pcm, "<i2")
    assert abs(len(samples) / VOICE.rate - 1.0) < 0.08, f"{name}: {len(samples)} samples"
    assert abs(peak_hz(samples, VOICE.rate) - 440) < 5, name


def test_what_is_not_a_readable_audio_file_is_refused() -> None:
    playlist = b"#EXTM3U\n#EXTINF:1,\nhttp://127.0.0.1:1/x.wav\n"
    with pytest.raises(MediaError, match="not WAV, MP3, FLAC or Ogg"):
        decode_media(playlist, VOICE)
    with pytest.raises(MediaError, match="wav file"):
        decode_media(b"RIFF\0\0\0\0WAVE" + bytes(200), VOICE)
    with pytest.raises(MediaError, match="mp3 file"):
        decode_media(encoded(tone(440, 1.0), "mp3", "libmp3lame")[:40], VOICE)
    with pytest.raises(TooLarge, match="longer than 2 s"):
        decode_media(wav_file(tone(440, 3.0)), VOICE, max_seconds=2)


# -- on a real server ---------------------------------------------------------------


@pytest.fixture(scope="module")
async def server(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[ServerProcess]:
    async with ServerProcess(tmp_path_factory.mktemp("announce"), TEST_CONFIG) as process:
        yield process


@pytest.fixture
async def hub(server: ServerProcess) -> AsyncIterator[ControlClient]:
    async with control(server.host, server.port, token_of(server)) as client:
        yield client


def heard(room: ScriptedSatellite, after: float) -> tuple[str, np.ndarray]:
    """The text and the audio (at the voice's rate) of the announcement `room` got after
    `after`."""
    handled = room.seen_of("handled", after)
    assert len(handled) == 1, [seen.event.data for seen in handled]
    reply_id = handled[0].event.data["context"]["reply_id"]
    audio = np.concatenate(room.speaker.replies[reply_id].received_audio)
    return handled[0].event.data["text"], audio


async def test_an_announcement_plays_its_chime_then_its_file_in_one_room_only(
    server: ServerProcess, hub: ControlClient
) -> None:
    chime = wav_file(tone(660, 0.3, 16_000), 16_000)
    media = encoded(tone(440, 1.0), "mp3", "libmp3lame")
    async with (
        satellite(server, "hall", area="Hall", enrolled=True) as hall,
        satellite(server, "den", area="Den", enrolled=True) as den,
    ):
        asked = time.monotonic()
        done = await hub.request(
            "locara-announce",
            payload=chime + media,
            text="The washing is done.",
            satellite="hall",
            chime_bytes=len(chime),
            media_bytes=len(media),
        )
        assert done.type == "locara-announce-done", done.data
        assert done.data["satellites"] == ["hall"]
        await hall.wait_for("handled", asked)
        text, audio = heard(hall, asked)
        assert text == "The washing is done."  # shown, not spoken: the file is played
        rate = VOICE.rate
        assert abs(len(audio) / rate - 1.3) < 0.1, f"{len(audio) / rate:.2f} s"
        assert abs(peak_hz(audio[: int(0.25 * rate)], rate) - 660) < 10, "the chime first"
        assert abs(peak_hz(audio[int(0.4 * rate) :], rate) - 440) < 10, "then the file"
        await asyncio.sleep(0.5)
        assert not den.seen_of("handled", asked), "the other room heard nothing"

        # Without a file: the chime, then the text in the persona's voice.
        asked = time.monotonic()
        done = await hub.request(
            "locara-announce",
            payload=chime,
            text="Dinner is ready.",
            satellite="den",
            chime_bytes=len(chime),
        )
        assert done.data["satellites"] == ["den"], done.data
        await den.wait_for("handled", asked)
        text, audio = heard(den, asked)
        assert text == "Dinner is ready."
        assert len(audio) / rate > 0.3 + 0.5, "the chime and the spoken words"
        assert abs(peak_hz(audio[: int(0.25 * rate)], rate) - 660) < 10

        # A file that is no audio is refused, and nothing is played.
        asked = time.monotonic()
        refused = await hub.request(
            "locara-announce",
            payload=b"#EXTM3U\n",
            text="",
            satellite="den",
            media_bytes=8,
        )
        assert refused.type == "error" and refused.data["code"] == "bad-request", refused.data
        assert "not WAV, MP3, FLAC or Ogg" in refused.data["text"]
        mismatched = await hub.request(
            "locara-announce", payload=chime, text="Hi", satellite="den", chime_bytes=3
        )
        assert mismatched.data["code"] == "bad-request", mismatched.data
        assert "add up to the payload" in mismatched.data["text"]
        await asyncio.sleep(0.3)
        assert not den.seen_of("handled", asked)


async def test_a_question_returns_the_rooms_next_words_and_no_reply(
    server: ServerProcess, hub: ControlClient, speech: Speech
) -> None:
    async with satellite(server, "study", area="Study", enrolled=True) as room:
        asked = time.monotonic()
        question = asyncio.create_task(
            hub.request(
                "locara-announce",
                text="Which colour shall the lights be?",
                satellite="study",
                answer=True,
                answer_timeout_s=30,
            )
        )
        await room.wait_for("locara-listen", asked)
        # Answered once the question has played (the satellite's echo gate closes its
        # microphone while it plays).
        handled = await room.wait_for("handled", asked)
        await room.speaker.replies[handled.event.data["context"]["reply_id"]].done.wait()
        said = await room.say(speech.at_16k("Make them blue please."))
        done = await asyncio.wait_for(question, 60)
        assert done.type == "locara-announce-done", done.data
        assert done.data["satellites"] == ["study"]
        transcript = await room.wait_for("transcript", asked)
        assert done.data["answer"] == transcript.event.data["text"]
        assert "blue" in done.data["answer"].lower(), done.data
        # The words answered Home Assistant's question: the room's LLM says nothing to them.
        await asyncio.sleep(3)
        assert not room.seen_of("handled-start", said.voiced_end), "no reply to the answer"

        # The room goes on as usual afterwards: its next words get a reply.
        said = await room.say(speech.at_16k("What colour is the sky?"))
        await room.answer_after(said.voiced_end)


async def test_a_question_nobody_answers_or_a_room_that_leaves_is_an_error(
    server: ServerProcess, hub: ControlClient
) -> None:
    async with satellite(server, "porch", area="Porch", enrolled=True) as room:
        started = time.monotonic()
        silent = await hub.request(
            "locara-announce", text="Anyone there?", satellite="porch", answer=True,
            answer_timeout_s=1,
        )  # fmt: skip
        assert silent.type == "error" and silent.data["code"] == "no-answer", silent.data
        assert "porch said nothing within" in silent.data["text"]
        assert time.monotonic() - started < 20
        assert room.seen_of("locara-listen", started)

        asked = time.monotonic()
        leaving = asyncio.create_task(
            hub.request(
                "locara-announce",
                text="Still there?",
                satellite="porch",
                answer=True,
                answer_timeout_s=60,
            )
        )
        await room.wait_for("locara-listen", asked)
        # The connection's other requests are answered meanwhile.
        muted = await asyncio.wait_for(
            hub.request("locara-set-muted", satellite="cellar", muted=True), 10
        )
        assert muted.type == "locara-settings-done", muted.data
        assert not leaving.done()
        second = await hub.request(
            "locara-announce", text="And you?", satellite="porch", answer=True
        )
        assert second.type == "error" and second.data["code"] == "busy", second.data
        assert "answering another question" in second.data["text"]
    gone = await asyncio.wait_for(leaving, 30)
    assert gone.type == "error" and gone.data["code"] == "not-found", gone.data
    assert "porch" in gone.data["text"]

    area = await hub.request("locara-announce", text="Hi?", area="Porch", answer=True)
    assert area.data["code"] == "bad-request" and "one satellite" in area.data["text"]


# -- answered once played -------------------------------------------------------------


def report_played_late(room: ScriptedSatellite, delay_s: float | None) -> list[float]:
    """Make `room` send each reply's `played` report `delay_s` after the reply has played
    out (None: never); the times it sent them."""
    finish = room.speaker.finish_reply
    reported: list[float] = []

    async def late(reply_id: str) -> int:
        samples = await finish(reply_id)
        if delay_s is None:
            await asyncio.Event().wait()  # until the session ends
        await asyncio.sleep(delay_s or 0.0)
        reported.append(time.monotonic())
        return samples

    room.speaker.finish_reply = late  # type: ignore[method-assign]
    return reported


async def test_an_announcement_is_answered_once_the_satellite_reports_it_played(
    server: ServerProcess, hub: ControlClient
) -> None:
    media = wav_file(tone(440, 1.0))
    async with satellite(server, "attic", area="Attic", enrolled=True) as room:
        reported = report_played_late(room, 1.5)
        asked = time.monotonic()
        done = await hub.request(
            "locara-announce", payload=media, text="Time for bed.", satellite="attic",
            media_bytes=len(media), listen=True,
        )  # fmt: skip
        answered = time.monotonic()
        assert done.type == "locara-announce-done", done.data
        assert done.data["satellites"] == ["attic"]
        assert "interrupted" not in done.data and "unconfirmed" not in done.data, done.data
        _, reply = await room.reply_after(asked)
        assert reply.ended_at is not None and len(reported) == 1
        assert reply.ended_at < reported[0] < answered, "not before the satellite said so"
        # The room listens only once the announcement is over: it would hear itself.
        listen = await room.wait_for("locara-listen", asked)
        assert listen.at > reported[0]


async def test_an_announcement_never_reported_is_unconfirmed_and_a_room_that_leaves_an_error(
    server: ServerProcess, hub: ControlClient
) -> None:
    media = wav_file(tone(440, 1.0))
    async with satellite(server, "loft", area="Loft", enrolled=True) as room:
        report_played_late(room, None)
        asked = time.monotonic()
        done = await hub.request(
            "locara-announce", payload=media, text="", satellite="loft", media_bytes=len(media)
        )
        waited = time.monotonic() - asked
        assert done.data["satellites"] == ["loft"] and done.data["unconfirmed"] == ["loft"]
        # The audio's length, then the margin for its report.
        assert 1.0 + ANNOUNCE_PLAYED_MARGIN_S - 0.2 < waited < 1.0 + ANNOUNCE_PLAYED_MARGIN_S + 5

        asked = time.monotonic()
        leaving = asyncio.create_task(
            hub.request(
                "locara-announce", payload=media, text="", satellite="loft",
                media_bytes=len(media),
            )
        )  # fmt: skip
        await room.wait_for("handled", asked)
    gone = await asyncio.wait_for(leaving, 10)
    assert gone.type == "error" and gone.data["code"] == "not-found", gone.data
    assert "loft left before the announcement had played" in gone.data["text"]


async def test_an_announcement_the_satellite_cuts_short_is_answered_interrupted(
    server: ServerProcess, hub: ControlClient
) -> None:
    media = wav_file(tone(440, 4.0))
    async with satellite(server, "nook", area="Nook", enrolled=True) as room:
        asked = time.monotonic()
        announcing = asyncio.create_task(
            hub.request(
                "locara-announce", payload=media, text="", satellite="nook",
                media_bytes=len(media),
            )
        )  # fmt: skip
        handled = await room.wait_for("handled", asked)
        reply_id, _ = await room.reply_after(asked)
        assert reply_id == handled.event.data["context"]["reply_id"]
        await asyncio.sleep(0.5)
        room.speaker.flush(reply_id)  # as its own stop button would
        done = await asyncio.wait_for(announcing, 10)
        assert done.data["satellites"] == ["nook"] and done.data["interrupted"] == ["nook"]
        assert time.monotonic() - asked < 4.0, "answered on the report, not at the audio's end"
