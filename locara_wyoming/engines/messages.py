"""The engine messages: how the server drives an engine in another process.

A model whose library cannot share the server's environment (moshi_mlx; PersonaPlex,
whose package is also named `moshi`) runs in an engine process of its own
environment. The two speak Wyoming events over the helper's stdin and stdout:

    helper -> server  locara-helper-ready  {engine, sample_rate, frame_samples, slots}
    server -> helper  locara-helper-reset  {slot, text_prompt, voice_prompt}
    helper -> server  locara-helper-reset  {slot, prompt_tokens}
    server -> helper  locara-helper-step   {slots}           payload: float32 frames
    helper -> server  locara-helper-step   {slots, texts, generated, compute_ms}
                                                              payload: float32 frames
    helper -> server  error                {code, text}      then the helper exits

Requests are answered in order, one answer each. Frames travel as little-endian
float32, the slots' frames one after another; `generated` says which slots had
audio (the others send none).
"""

from __future__ import annotations

import numpy as np
from wyoming.event import Event

from .engine import FrameOutput, Persona

READY = "locara-helper-ready"
RESET = "locara-helper-reset"
STEP = "locara-helper-step"


def ready_event(engine: str, sample_rate: int, frame_samples: int, slots: int) -> Event:
    data = {"engine": engine, "sample_rate": sample_rate, "frame_samples": frame_samples}
    return Event(READY, {**data, "slots": slots})


def reset_request(slot: int, persona: Persona) -> Event:
    data = {"slot": slot, "text_prompt": persona.text_prompt, "voice_prompt": persona.voice_prompt}
    return Event(RESET, data)


def read_reset_request(event: Event) -> tuple[int, Persona]:
    data = event.data
    return int(data["slot"]), Persona(str(data["text_prompt"]), data.get("voice_prompt"))


def _frames(payload: bytes | None, count: int) -> list[np.ndarray]:
    samples = np.frombuffer(payload or b"", dtype="<f4")
    if count == 0:
        return []
    if samples.size % count:
        raise ValueError(f"{samples.size} samples do not split into {count} frames")
    return list(samples.reshape(count, -1).astype(np.float32))


def step_request(frames: dict[int, np.ndarray]) -> Event:
    payload = b"".join(frame.astype("<f4").tobytes() for frame in frames.values())
    return Event(STEP, {"slots": list(frames)}, payload)


def read_step_request(event: Event) -> dict[int, np.ndarray]:
    slots = [int(slot) for slot in event.data["slots"]]
    return dict(zip(slots, _frames(event.payload, len(slots)), strict=True))


def step_answer(outputs: dict[int, FrameOutput], compute_ms: float) -> Event:
    generated = [output.pcm is not None for output in outputs.values()]
    payload = b"".join(o.pcm.astype("<f4").tobytes() for o in outputs.values() if o.pcm is not None)
    data = {
        "slots": list(outputs),
        "texts": [output.text for output in outputs.values()],
        "generated": generated,
        "compute_ms": compute_ms,
    }
    return Event(STEP, data, payload)


def read_step_answer(event: Event) -> tuple[dict[int, FrameOutput], float]:
    data = event.data
    audio = iter(_frames(event.payload, sum(bool(g) for g in data["generated"])))
    outputs = {
        int(slot): FrameOutput(next(audio) if generated else None, str(text))
        for slot, text, generated in zip(
            data["slots"], data["texts"], data["generated"], strict=True
        )
    }
    return outputs, float(data["compute_ms"])
