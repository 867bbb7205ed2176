"""Answers spoken by the Piper voice, rendered at test time and kept for the session.

A test builds what a rep says from sentences and pauses, and feeds it through the path the
microphone uses. The voice samples noise, so it is reseeded for every sentence: the same text
always gives the same samples, whatever ran before.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from debrief import speech
from debrief.audio import SAMPLE_RATE

SEED = 20240601
NOISE_FLOOR = 0.0005  # about -66 dBFS: a microphone in a quiet car never gives digital silence


@functools.lru_cache(maxsize=None)
def spoken(text: str) -> np.ndarray:
    """`text` in the Piper voice as 16 kHz float32 samples (cached: do not modify the array)."""
    import onnxruntime

    onnxruntime.set_seed(SEED)
    speech.piper_voice.cache_clear()  # its noise generators are seeded when it loads
    audio, rate = speech.synthesize_piper(text)
    return speech.resample(audio, rate, SAMPLE_RATE)


def answer(*parts: str | float, lead: float = 0.5, tail: float = 3.0, noise: float = NOISE_FLOOR) -> np.ndarray:
    """An answer as a microphone hears it: `lead` s of quiet, the parts (a text is said, a number
    is seconds of pause), `tail` s of quiet, all over a faint noise floor."""
    pieces = [np.zeros(int(lead * SAMPLE_RATE), np.float32)]
    for part in parts:
        pieces.append(np.zeros(int(part * SAMPLE_RATE), np.float32) if isinstance(part, (int, float))
                      else spoken(part))
    pieces.append(np.zeros(int(tail * SAMPLE_RATE), np.float32))
    audio = np.concatenate(pieces)
    rng = np.random.default_rng(len(audio))
    return (audio + rng.normal(0, noise, len(audio))).astype(np.float32)


def seconds(*parts: str | float) -> float:
    """How long the parts last, without lead or tail."""
    return sum(p if isinstance(p, (int, float)) else len(spoken(p)) / SAMPLE_RATE for p in parts)


def write(path: Path, audio: np.ndarray) -> Path:
    """Save samples as a 16 kHz WAV, as a rep's recording would be."""
    return speech.write_wav(path, audio, SAMPLE_RATE)
