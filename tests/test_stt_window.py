"""Speech-to-text on a window sized to the utterance, against faster-whisper's 30 s window:
the embedded tiny.en on real Piper speech, clean, noisy and 10-25 s long."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from faster_whisper import WhisperModel

from locara_wyoming.bench.services import ASR_TEXT
from locara_wyoming.bench.utterances import QUESTIONS, synthesize
from locara_wyoming.bench.word_errors import word_errors
from locara_wyoming.config import ConfigError, LimitsConfig, SttConfig, load_config
from locara_wyoming.stages.stt import STT_RATE, FasterWhisperStt
from locara_wyoming.stages.whisper_window import ShortWindowWhisper

pytestmark = pytest.mark.models

LONG = [
    "Please turn off the lights in the kitchen and the living room. Then lock the front "
    "door, close the garage, and set the heating to nineteen degrees for the night. Also "
    "make sure the window in the bedroom is closed.",
    "I would like to plan a trip to the mountains next weekend. We need a place to stay for "
    "two nights, a good hiking trail for the children, and a restaurant that serves "
    "breakfast early in the morning. It should not be more than two hours away by car.",
    "Remind me tomorrow at eight in the morning to call the dentist. After that, add milk, "
    "eggs, bread and three apples to the shopping list. Then tell me what the weather will "
    "be like in the afternoon, because I want to go for a long walk with the dog in the "
    "park near the river.",
    "My grandmother used to tell us a story about a small village by the sea. Every summer "
    "the fishermen would bring back boxes of silver fish, and the whole village would "
    "gather on the beach to cook them over a big fire. The children would play in the "
    "waves until the sun went down, and then everyone would sing old songs late into the "
    "night while the stars came out one by one.",
    "Yesterday I tried to bake bread for the first time. I mixed the flour with water, salt "
    "and a little yeast, and left the dough to rise near the window for most of the "
    "afternoon. When I finally put it in the oven, the whole house smelled wonderful. The "
    "crust was a bit too dark, but the inside was soft and warm. Next time I will bake it "
    "for ten minutes less and maybe add some seeds on top.",
    "Our neighbours are moving to another city at the end of the month. They have lived "
    "next door for almost twelve years, and their children grew up with ours. We want to "
    "give them something to remember us by, perhaps a photo book with pictures from the "
    "summer parties in the garden, the long winter evenings, and the day the old apple tree "
    "finally fell down in the storm. What do you think would be a good title for such a "
    "book?",
]
NOISE_SNR_DB = (15.0, 20.0)


def with_noise(audio: np.ndarray, snr_db: float, seed: int) -> np.ndarray:
    """White noise added at `snr_db` below the speech's power, the same at every run."""
    noise_power = float(np.mean(audio**2)) / 10 ** (snr_db / 10)
    noise = np.random.default_rng(seed).normal(0.0, np.sqrt(noise_power), len(audio))
    return (audio + noise).astype(np.float32)


@dataclass(frozen=True)
class Case:
    text: str
    audio: np.ndarray
    kind: str


class Refusals(logging.Handler):
    """The short window's refusals, as the speech-to-text stage logs them."""

    def __init__(self) -> None:
        super().__init__()
        self.reasons: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage().startswith("Short window refused"):
            self.reasons.append(record.getMessage())


@pytest.fixture(scope="module")
def refusals() -> Iterator[Refusals]:
    handler = Refusals()
    logger = logging.getLogger("locara_wyoming.stages.stt")
    logger.addHandler(handler)
    yield handler
    logger.removeHandler(handler)


@pytest.fixture(scope="module")
def spoken() -> list[np.ndarray]:
    return synthesize(QUESTIONS + LONG)


@pytest.fixture(scope="module")
def cases(spoken: list[np.ndarray]) -> list[Case]:
    texts = QUESTIONS + LONG
    clean = [
        Case(text, audio, "question" if text in QUESTIONS else "long")
        for text, audio in zip(texts, spoken, strict=True)
    ]
    noisy = []
    for seed, case in enumerate(clean):
        snr = NOISE_SNR_DB[seed % 2]
        noisy.append(Case(case.text, with_noise(case.audio, snr, seed), f"{case.kind}, {snr} dB"))
    return clean + noisy


async def loaded(config: SttConfig) -> FasterWhisperStt:
    stt = FasterWhisperStt(config, LimitsConfig())
    await stt.load()
    return stt


async def heard(stt: FasterWhisperStt, audio: np.ndarray) -> str:
    return "".join([piece async for piece in stt.transcribe(audio, "en")]).strip()


@dataclass(frozen=True)
class Transcripts:
    short: list[str]
    full: list[str]
    refused: list[str]
    """The short window's refusals over the whole set, with the default settings."""


@pytest.fixture(scope="module")
async def transcripts(cases: list[Case], refusals: Refusals) -> Transcripts:
    short, full = await loaded(SttConfig()), await loaded(SttConfig(short_window=False))
    refusals.reasons.clear()
    return Transcripts(
        short=[await heard(short, case.audio) for case in cases],
        full=[await heard(full, case.audio) for case in cases],
        refused=list(refusals.reasons),
    )


def test_the_set_holds_questions_long_utterances_and_their_noisy_variants(
    cases: list[Case],
) -> None:
    seconds = {case.text: len(case.audio) / STT_RATE for case in cases}
    assert all(seconds[text] < 3 for text in QUESTIONS)
    assert all(10 <= seconds[text] <= 25 for text in LONG)
    assert len(cases) == 2 * (len(QUESTIONS) + len(LONG))
    assert sum("dB" in case.kind for case in cases) == len(QUESTIONS) + len(LONG)


def test_the_short_window_itself_answers_every_utterance_of_the_set(
    transcripts: Transcripts,
) -> None:
    # Otherwise the comparisons below would compare the 30 s window with itself.
    assert transcripts.refused == []


def test_each_question_is_heard_as_the_full_window_hears_it_give_or_take_a_word(
    cases: list[Case], transcripts: Transcripts
) -> None:
    for case, short, full in zip(cases, transcripts.short, transcripts.full, strict=True):
        if case.kind == "question":
            assert word_errors([full], [short]).errors <= 1, (full, short)


def test_no_utterance_gets_more_than_one_word_error_more_than_in_the_full_window(
    cases: list[Case], transcripts: Transcripts
) -> None:
    # On long noisy speech the two windows may go wrong in different words
    # ("sunslate into" and "suns late until" for "songs late into"): per utterance, what
    # counts is the errors against what was said.
    for case, short, full in zip(cases, transcripts.short, transcripts.full, strict=True):
        short_errors = word_errors([case.text], [short]).errors
        assert short_errors <= word_errors([case.text], [full]).errors + 1, (case.kind, short)


def test_over_the_set_the_short_window_makes_at_most_one_word_error_more(
    cases: list[Case], transcripts: Transcripts
) -> None:
    spoken = [case.text for case in cases]
    short = word_errors(spoken, transcripts.short)
    full = word_errors(spoken, transcripts.full)
    logging.getLogger(__name__).info(
        "word errors over %d utterances (%d words): short window %d (WER %.3f), "
        "30 s window %d (WER %.3f)",
        len(cases), short.words, short.errors, short.rate, full.errors, full.rate,
    )  # fmt: skip
    assert short.errors <= full.errors + 1


async def test_a_window_too_short_loops_and_the_30_s_window_answers_instead(
    whisper: WhisperModel, spoken: list[np.ndarray], refusals: Refusals
) -> None:
    question, audio = QUESTIONS[0], spoken[0]
    looped = ShortWindowWhisper(whisper, floor_s=1, margin_s=0, beam_size=1)
    result = looped.transcribe(audio, "en")
    assert result.text.count(question) >= 2 and result.refused is not None
    assert "cap" in result.refused

    refusals.reasons.clear()
    text = await heard(await loaded(SttConfig(window_floor_s=1, window_margin_s=0)), audio)
    assert refusals.reasons and "cap" in refusals.reasons[0]
    assert text == await heard(await loaded(SttConfig(short_window=False)), audio)
    assert word_errors([question], [text]).errors == 0


def test_a_repeated_sentence_that_ends_before_the_cap_is_refused(
    whisper: WhisperModel, spoken: list[np.ndarray]
) -> None:
    # With no margin after the utterance, Whisper says the last sentence of this one twice.
    ending = "What do you think would be a good title for such a book?"
    result = ShortWindowWhisper(whisper, floor_s=10, margin_s=0, beam_size=1).transcribe(
        spoken[len(QUESTIONS) + 5], "en"
    )
    assert result.text.count(ending) == 2
    assert result.refused == "repeats a phrase"


async def test_audio_longer_than_30_s_goes_to_the_30_s_window(
    spoken: list[np.ndarray], refusals: Refusals
) -> None:
    texts, parts = LONG[3:5], spoken[len(QUESTIONS) + 3 : len(QUESTIONS) + 5]
    audio = np.concatenate(parts)
    assert len(audio) / STT_RATE > 30
    refusals.reasons.clear()
    text = await heard(await loaded(SttConfig()), audio)
    assert len(refusals.reasons) == 1 and "longer than one window" in refusals.reasons[0]
    assert word_errors([" ".join(texts)], [text]).rate < 0.1, text


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("window_floor_s = 0.5", "stt.window_floor_s = 0.5"),
        ("window_margin_s = 11", "stt.window_margin_s = 11"),
    ],
)
def test_window_settings_out_of_range_are_named(tmp_path: Path, setting: str, message: str) -> None:
    path = tmp_path / "locara.toml"
    path.write_text(f"[stt]\n{setting}\n")
    with pytest.raises(ConfigError, match=message):
        load_config(path)


def test_bench_services_reports_the_asr_word_error_rate_beside_its_time(tmp_path: Path) -> None:
    out = tmp_path / "services.json"
    command = [sys.executable, "-m", "locara_wyoming", "bench", "services", "--runs", "1"]
    subprocess.run([*command, "--json", str(out)], check=True, timeout=600)
    asr = json.loads(out.read_text())["asr"]
    assert asr["text"] == ASR_TEXT and asr["audio_s"] == 3.0 and asr["ms"]["p50"] > 0
    assert asr["word_error_rate"] == round(word_errors([ASR_TEXT], [asr["transcript"]]).rate, 3)
    assert asr["word_error_rate"] <= 0.1
