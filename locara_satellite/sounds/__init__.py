"""Sounds that ship with the satellite, made by us (scripts/make_timer_sound.py)."""

from pathlib import Path

TIMER_SOUND = Path(__file__).with_name("timer.wav")
"""Played when a timer finishes, round after round until someone says "stop"."""
