"""The pace a session's audio must keep (audio_pace.py), on a clock of our own, and the
session's microphone that drops what is over it (sessions/microphone.py)."""

from __future__ import annotations

import numpy as np
import pytest

from locara_wyoming.audio_format import MonoConverter, PcmFormat
from locara_wyoming.audio_pace import BURST_LIMIT_S, SPEED_LIMIT, AudioPace
from locara_wyoming.errors import OutOfOrder, TooFast
from locara_wyoming.sessions.microphone import SessionMicrophone

CHUNK_S = 0.02


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def server_pace(clock: Clock) -> AudioPace:
    return AudioPace(SPEED_LIMIT, BURST_LIMIT_S, clock)


@pytest.mark.parametrize("speed", [1.0, 1.45])
def test_audio_under_the_limit_is_always_admitted(speed: float) -> None:
    clock = Clock()
    pace = server_pace(clock)
    for _ in range(5000):  # 100 s of audio
        assert pace.admit(CHUNK_S)
        clock.now += CHUNK_S / speed


def test_a_burst_then_one_and_a_half_times_real_time() -> None:
    clock = Clock()
    pace = server_pace(clock)
    admitted = sum(pace.admit(CHUNK_S) for _ in range(200))  # 4 s at once
    assert admitted == pytest.approx(BURST_LIMIT_S / CHUNK_S, abs=1)
    clock.now += 1.0
    admitted = sum(pace.admit(CHUNK_S) for _ in range(200))
    assert admitted == pytest.approx(SPEED_LIMIT / CHUNK_S, abs=1)
    clock.now += 60.0  # a pause refills no more than a burst
    admitted = sum(pace.admit(CHUNK_S) for _ in range(200))
    assert admitted == pytest.approx(BURST_LIMIT_S / CHUNK_S, abs=1)


def test_a_chunk_longer_than_the_burst_is_never_admitted() -> None:
    clock = Clock()
    pace = server_pace(clock)
    clock.now += 3600.0
    assert not pace.admit(BURST_LIMIT_S + 0.01)
    assert pace.admit(BURST_LIMIT_S)  # and a refused one took nothing


def test_a_client_waits_until_its_audio_keeps_the_pace() -> None:
    clock = Clock()
    pace = AudioPace(1.25, 1.0, clock)
    assert pace.wait_s(0.5) == 0.0
    pace.take(1.0)
    assert pace.wait_s(0.5) == pytest.approx(0.4)
    pace.take(3.0)  # a chunk longer than a burst goes out all the same, and is owed
    assert pace.wait_s(3.0) == pytest.approx((3.0 + 1.0) / 1.25)


def test_a_skipped_chunk_keeps_the_frames_aligned() -> None:
    """Chunks may split frames: a dropped chunk must not shift the bytes after it."""
    converter = MonoConverter(PcmFormat(16000, 2, 1), 16000)
    assert converter.convert(b"\x01\x00\x02").tolist() == [1 / 32768]
    converter.skip(b"\x00\x03\x00")  # completes the frame begun above, and one more
    assert converter.convert(b"\x04\x00").tolist() == [4 / 32768]


def test_the_microphone_drops_what_is_over_the_pace_and_says_so_once() -> None:
    microphone = SessionMicrophone("kitchen", 16000)
    with pytest.raises(OutOfOrder):
        microphone.convert(bytes(640))
    microphone.start(PcmFormat(8000, 2, 1))
    burst = microphone.convert(bytes(int(8000 * 2 * BURST_LIMIT_S)))
    assert isinstance(burst, np.ndarray) and len(burst) > 31000  # soxr keeps some ms back
    with pytest.raises(TooFast, match=r"1\.5 times real time"):
        microphone.convert(bytes(320))
    assert microphone.convert(bytes(320)) is None  # dropped; told once already
    microphone.start(PcmFormat(1000, 1, 1))  # a new start does not refill the pace
    assert microphone.convert(bytes(2**20)) is None
