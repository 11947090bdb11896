"""The playback buffer every output pulls from: pre-roll, underruns, flush, played counts."""

from __future__ import annotations

import asyncio

import numpy as np

from locara_wyoming.audio_format import PcmFormat, float_to_pcm16
from locara_wyoming.client.playback import FADE_MS, REPLIES_KEPT, PlaybackBuffer

OUT = 16000
REPLY = PcmFormat(22050, 2, 1)


def tone(ms: float, rate: int = REPLY.rate) -> bytes:
    t = np.arange(int(rate * ms / 1000)) / rate
    return float_to_pcm16(0.5 * np.sin(2 * np.pi * 440 * t))


def pull_ms(buffer: PlaybackBuffer, ms: float) -> np.ndarray:
    return buffer.pull(int(OUT * ms / 1000))


async def test_a_reply_waits_for_its_preroll_then_plays_whole() -> None:
    buffer = PlaybackBuffer(OUT, preroll_ms=100)
    await buffer.start_reply("r1", REPLY)
    await buffer.write("r1", tone(60))
    assert not pull_ms(buffer, 10).any() and buffer.replies["r1"].audible_at is None
    await buffer.write("r1", tone(140))
    assert pull_ms(buffer, 10).any() and buffer.replies["r1"].audible_at is not None
    finished = asyncio.create_task(buffer.finish_reply("r1"))
    await asyncio.sleep(0)
    while not finished.done():
        pull_ms(buffer, 10)
        await asyncio.sleep(0)
    reply = buffer.replies["r1"]
    assert await finished == reply.received == len(tone(200)) // 2
    assert reply.underruns == 0 and not pull_ms(buffer, 10).any()


async def test_a_short_reply_plays_without_its_preroll_once_complete() -> None:
    buffer = PlaybackBuffer(OUT, preroll_ms=500)
    await buffer.start_reply("r1", REPLY)
    await buffer.write("r1", tone(100))
    finished = asyncio.create_task(buffer.finish_reply("r1"))
    await asyncio.sleep(0)
    assert pull_ms(buffer, 50).any()
    pull_ms(buffer, 100)
    assert await finished == buffer.replies["r1"].received


async def test_each_dry_spell_is_one_underrun() -> None:
    buffer = PlaybackBuffer(OUT, preroll_ms=20)
    same_rate = PcmFormat(OUT, 2, 1)  # soxr holds back ~40 ms at first: keep the count exact
    await buffer.start_reply("r1", same_rate)
    await buffer.write("r1", tone(40, OUT))
    pull_ms(buffer, 30)
    for _ in range(5):
        pull_ms(buffer, 20)  # the network is late: one underrun, however long
    assert buffer.replies["r1"].underruns == 1
    await buffer.write("r1", tone(40, OUT))
    pull_ms(buffer, 30)
    pull_ms(buffer, 30)
    assert buffer.replies["r1"].underruns == buffer.underruns == 2


async def test_a_flush_fades_to_silence_at_once_and_reports_what_was_heard() -> None:
    buffer = PlaybackBuffer(OUT, preroll_ms=0)
    await buffer.start_reply("r1", REPLY)
    await buffer.write("r1", tone(1000))
    pull_ms(buffer, 250)
    played = buffer.flush("r1")
    # In the reply's own samples, the fade included: it too is heard.
    assert abs(played - REPLY.rate * (250 + FADE_MS) / 1000) <= 2
    after = pull_ms(buffer, 20)
    reply = buffer.replies["r1"]
    assert reply.silent_at is not None and reply.flushed_at is not None
    assert FADE_MS / 1000 <= reply.silent_at - reply.flushed_at < 0.05
    fade = int(OUT * FADE_MS / 1000)
    assert np.abs(after[:fade]).max() > 0 and not after[fade:].any()
    assert np.abs(after[fade - 10 : fade]).max() < np.abs(after[:10]).max()  # fading out
    await buffer.write("r1", tone(100))  # late audio of a flushed reply is dropped
    assert not pull_ms(buffer, 50).any()
    assert await buffer.finish_reply("r1") == played


async def test_replies_play_back_to_back_at_the_set_volume() -> None:
    buffer = PlaybackBuffer(OUT, preroll_ms=0, volume=4.0)
    same_rate = PcmFormat(OUT, 2, 1)
    for reply_id in ("a", "b"):
        await buffer.start_reply(reply_id, same_rate)
        await buffer.write(reply_id, tone(50, OUT))
    first = asyncio.create_task(buffer.finish_reply("a"))
    await asyncio.sleep(0)
    out = pull_ms(buffer, 60)
    assert np.abs(out).max() == 1.0  # 0.5 times 4, clipped
    assert await asyncio.wait_for(first, 1) == OUT * 50 // 1000
    assert buffer.replies["b"].played == OUT * 10 // 1000  # no gap between them


async def test_a_long_running_buffer_keeps_only_the_latest_finished_replies() -> None:
    """A satellite plays thousands of replies over months; the buffer keeps the
    figures of the last `REPLIES_KEPT`, never one still queued or playing."""
    buffer = PlaybackBuffer(OUT, preroll_ms=0)
    same_rate = PcmFormat(OUT, 2, 1)
    for number in range(3 * REPLIES_KEPT):
        reply_id = f"r{number}"
        await buffer.start_reply(reply_id, same_rate)
        await buffer.write(reply_id, tone(20, OUT))
        if number % 3 == 0:
            buffer.flush(reply_id)
        else:
            finished = asyncio.create_task(buffer.finish_reply(reply_id))
            await asyncio.sleep(0)
            pull_ms(buffer, 30)
            await asyncio.wait_for(finished, 1)
    # Two more waiting behind one that is playing, the first of them flushed in the queue.
    for reply_id in ("playing", "flushed", "waiting"):
        await buffer.start_reply(reply_id, same_rate)
        await buffer.write(reply_id, tone(100, OUT))
    pull_ms(buffer, 10)
    buffer.flush("flushed")
    await buffer.start_reply("next", same_rate)
    kept = list(buffer.replies)
    assert kept[-4:] == ["playing", "flushed", "waiting", "next"]
    assert kept[:-4] == [f"r{n}" for n in range(2 * REPLIES_KEPT, 3 * REPLIES_KEPT)]
    assert buffer.flush("r0") == 0  # long gone: nothing to drop
    playing = asyncio.create_task(buffer.finish_reply("playing"))
    await asyncio.sleep(0)
    assert pull_ms(buffer, 150).any()  # the queue plays on past the flushed one
    assert buffer.replies["waiting"].audible_at is not None
    assert await asyncio.wait_for(playing, 1) == OUT // 10
