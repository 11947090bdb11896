"""The loop watch on a real event loop held up by blocking code."""

from __future__ import annotations

import asyncio
import time

import pytest

from locara_wyoming.loop_watch import LoopWatch


def _decode_a_huge_thing_on_the_loop(seconds: float) -> None:
    time.sleep(seconds)  # what a blocking model call on the loop would do


async def test_a_held_up_loop_is_logged_with_what_held_it(caplog: pytest.LogCaptureFixture) -> None:
    watch = LoopWatch(stall_s=0.3, beat_s=0.05)
    task = asyncio.create_task(watch.run())
    try:
        for _ in range(20):  # busy in short bursts: no stall
            await asyncio.sleep(0.02)
            _decode_a_huge_thing_on_the_loop(0.05)
        assert watch.stalls == 0 and "held up" not in caplog.text
        _decode_a_huge_thing_on_the_loop(1.0)
        await asyncio.sleep(0.3)
    finally:
        task.cancel()
    assert watch.stalls == 1
    assert 0.8 <= watch.longest_stall_s <= 1.5
    assert "_decode_a_huge_thing_on_the_loop" in caplog.text
    assert "went on after a stall of" in caplog.text
