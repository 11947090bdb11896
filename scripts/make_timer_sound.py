"""Make the satellite's timer sound (locara_satellite/sounds/timer.wav) from pure tones.

Two rising triple beeps (A5 then E6), 22050 Hz mono 16-bit, about 1.3 s: easy to hear
across a kitchen, short enough to leave room for the words that follow it. Run it to
make the file again: `python scripts/make_timer_sound.py`.
"""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np

RATE = 22050
BEEP_S, GAP_S, PAUSE_S = 0.11, 0.07, 0.25
TONES_HZ = (880.0, 1318.5)
LEVEL = 0.35
FADE_S = 0.008


def beep(frequency: float) -> np.ndarray:
    t = np.arange(int(RATE * BEEP_S)) / RATE
    # A little of the octave above: it carries better through small speakers.
    tone = np.sin(2 * np.pi * frequency * t) + 0.3 * np.sin(4 * np.pi * frequency * t)
    fade = np.minimum(1.0, np.minimum(t, t[-1] - t) / FADE_S)
    return (tone * fade / 1.3).astype(np.float32)


def timer_sound() -> np.ndarray:
    gap, pause = np.zeros(int(RATE * GAP_S)), np.zeros(int(RATE * PAUSE_S))
    parts: list[np.ndarray] = []
    for frequency in TONES_HZ:
        for _ in range(3):
            parts += [beep(frequency), gap]
        parts.append(pause)
    return np.concatenate(parts).astype(np.float32) * LEVEL


def main() -> None:
    path = Path(__file__).resolve().parents[1] / "locara_satellite" / "sounds" / "timer.wav"
    pcm = (np.clip(timer_sound(), -1, 1) * 32767).astype("<i2").tobytes()
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(RATE)
        wav.writeframes(pcm)
    print(f"{path}: {len(pcm) // 2 / RATE:.2f} s")


if __name__ == "__main__":
    main()
