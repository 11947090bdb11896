"""Memory that model calls free goes back to the system: a long sentence or a long
transcription does not leave the server bigger for good."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import psutil
import pytest

from locara_wyoming.bench import client as wy
from locara_wyoming.bench.server_process import ServerProcess
from locara_wyoming.memory_release import MemoryReleaser
from locara_wyoming.workers import ModelWorker

LONG_SENTENCE = (
    "The old dragon flew slowly over the quiet village where the children played near "
    "the river, and the baker sang his morning songs about warm bread and honey, while "
    "the farmers walked out to their fields with their dogs and their tools and their "
    "long wooden carts, and the bells of the little church rang out across the hills "
    "until the sun stood high above the valley and everyone stopped to rest in the shade."
)
ALLOWED_GROWTH_MB = 80.0
"""What the calls below may leave behind. Without the releaser they left 400-550 MB."""


def rss_mb(pid: int) -> float:
    return float(psutil.Process(pid).memory_info().rss) / 2**20


async def settled_rss_mb(pid: int, at_most_mb: float, within_s: float = 10.0) -> float:
    """The server's memory once it is at most `at_most_mb`, or after `within_s`."""
    for _ in range(round(within_s / 0.25)):
        if rss_mb(pid) <= at_most_mb:
            break
        await asyncio.sleep(0.25)
    return rss_mb(pid)


@pytest.fixture(scope="module")
async def fresh_server(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[ServerProcess]:
    """A server of its own: one that has already spoken long sentences would pass anyway."""
    async with ServerProcess(
        tmp_path_factory.mktemp("memory"), "[limits]\nmemory_release_s = 0.5\n"
    ) as process:
        yield process


@pytest.mark.models
async def test_a_long_sentence_and_a_long_transcription_leave_no_growth(
    fresh_server: ServerProcess,
) -> None:
    await wy.synthesize(fresh_server.uri, "Hello there.")
    await asyncio.sleep(2)
    baseline = rss_mb(fresh_server.pid)

    spoken = await wy.synthesize(fresh_server.uri, LONG_SENTENCE)
    audio = spoken.audio_format()
    seconds = len(spoken.audio()) / audio.frame_bytes / audio.rate
    assert seconds > 15, f"the sentence was only {seconds:.1f} s of speech"
    after_speaking = await settled_rss_mb(fresh_server.pid, baseline + ALLOWED_GROWTH_MB)
    assert after_speaking <= baseline + ALLOWED_GROWTH_MB, (
        f"{baseline:.0f} MB before a {seconds:.0f} s sentence, {after_speaking:.0f} MB after"
    )

    heard = await wy.transcribe(fresh_server.uri, spoken.audio(), audio)
    words = wy.transcript_text(heard).split()
    assert len(words) > 20, words  # it was heard, whether or not every word was right
    after_hearing = await settled_rss_mb(fresh_server.pid, baseline + ALLOWED_GROWTH_MB)
    assert after_hearing <= baseline + ALLOWED_GROWTH_MB, (
        f"{baseline:.0f} MB before transcribing {seconds:.0f} s, {after_hearing:.0f} MB after"
    )


async def test_the_releaser_acts_after_model_work_and_rests_while_idle() -> None:
    releaser = MemoryReleaser(interval_s=0.05)
    assert releaser.active, "glibc has malloc_trim"
    task = asyncio.create_task(releaser.run())
    try:
        await asyncio.sleep(0.3)
        assert releaser.releases == 0, "nothing was freed, nothing to hand back"
        worker = ModelWorker("test", concurrency=1, wait_s=5)
        await worker.call(lambda: bytearray(50 * 2**20))
        for _ in range(200):
            if releaser.releases:
                break
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.3)
        assert releaser.releases == 1, "one call ended: one release, then rest"
    finally:
        task.cancel()


async def test_a_releaser_turned_off_returns_at_once() -> None:
    releaser = MemoryReleaser(interval_s=0)
    assert not releaser.active
    async with asyncio.timeout(1):
        await releaser.run()
