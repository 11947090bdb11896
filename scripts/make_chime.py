"""Write the Locara integration's default announcement chime,
`custom_components/locara/chime.wav`: two soft tones (E5, then A5), 16 kHz 16-bit mono.

The sound is made here from sine waves, so it is the project's own work under the
project's licence (MIT), like the code. Run it again only to change the chime:

    python3 scripts/make_chime.py
"""

from __future__ import annotations

import math
import struct
import wave
from pathlib import Path

RATE = 16_000
TONES_HZ = (659.25, 880.0)
TONE_S = 0.16
GAP_S = 0.04
FADE_S = 0.02
LEVEL = 0.35
OUT = Path(__file__).resolve().parents[1] / "custom_components" / "locara" / "chime.wav"


def tone(frequency: float) -> list[float]:
    count = int(TONE_S * RATE)
    fade = int(FADE_S * RATE)
    samples = []
    for i in range(count):
        envelope = min(1.0, i / fade, (count - 1 - i) / fade)
        samples.append(LEVEL * envelope * math.sin(2 * math.pi * frequency * i / RATE))
    return samples


def main() -> None:
    samples: list[float] = []
    for frequency in TONES_HZ:
        samples += tone(frequency) + [0.0] * int(GAP_S * RATE)
    with wave.open(str(OUT), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(RATE)
        out.writeframes(b"".join(struct.pack("<h", round(s * 32767)) for s in samples))


if __name__ == "__main__":
    main()
