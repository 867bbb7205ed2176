"""Call recordings with two speakers: the rep on one stereo channel, the prospect on the other.

Many call-recording systems keep each side of a phone call on its own channel. Each channel is cut
into turns where its speaker talks (Silero VAD, as faster-whisper uses it), each turn is
transcribed on its own, and the turns are merged by time into a transcript of `REP: ...` and
`PROSPECT: ...` lines, which the classifier reads as separate turns with their speaker.

`Analyzer.analyze` (pipeline.py) is the entry for any file: it asks `is_call` and, for a call,
`transcribe_call`. A mono recording, or a "stereo" file whose channels carry the same voices (a
mono recording saved as stereo, a stereo microphone), is downmixed and left unlabelled.

Touches: nothing but the audio it is given and the Transcriber it is handed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from debrief.audio import SAMPLE_RATE
from debrief.transcription import Segment, Transcriber, Transcript

REP_CHANNELS = ("left", "right")
REP, PROSPECT = "REP", "PROSPECT"

# The two sides of a call are nearly uncorrelated (mostly one talks at a time); the two channels
# of one voice recorded in stereo are strongly correlated.
SAME_SOURCE_CORRELATION = 0.5
# A channel with less than this share of the other's energy (-40 dB) is empty, not a side.
ONE_SIDED = 1e-4
# A pause shorter than this inside one side's speech does not end its turn.
TURN_PAUSE_MS = 600
# Speech on a channel at least this much quieter than the other channel at the same moment is
# the other speaker leaking across (echo, a shared handset), not this speaker: -12 dB.
BLEED_RATIO = 0.25


@dataclass(frozen=True)
class Turn:
    """One side talking, in seconds from the start of the call; `channel` is its row in the audio."""

    speaker: str
    channel: int
    start: float
    end: float


def is_call(channels: np.ndarray) -> bool:
    """Whether decoded audio, shape (channels, n), holds the two sides of a call apart."""
    if channels.ndim != 2 or channels.shape[0] != 2:
        return False
    left, right = channels
    # float32 dot products: an hour of audio is not copied to float64 for a yes or no.
    left_power, right_power = float(np.dot(left, left)), float(np.dot(right, right))
    if min(left_power, right_power) <= ONE_SIDED * max(left_power, right_power):
        return False  # one channel silent: a recorder that filled only one side
    correlation = float(np.dot(left, right)) / np.sqrt(left_power * right_power)
    return abs(correlation) < SAME_SOURCE_CORRELATION


def find_turns(channels: np.ndarray, rep_channel: str = "left") -> list[Turn]:
    """The turns of a two-channel call in time order, each labelled REP or PROSPECT."""
    if rep_channel not in REP_CHANNELS:
        raise ValueError(f"rep_channel must be one of {REP_CHANNELS}, got {rep_channel!r}")
    from faster_whisper.vad import VadOptions, get_speech_timestamps

    rep_row = REP_CHANNELS.index(rep_channel)
    options = VadOptions(min_silence_duration_ms=TURN_PAUSE_MS, speech_pad_ms=200)
    pieces = []
    for row, speaker in ((rep_row, REP), (1 - rep_row, PROSPECT)):
        for chunk in get_speech_timestamps(channels[row], options):
            if not _is_bleed(channels, row, chunk["start"], chunk["end"]):
                pieces.append(Turn(speaker, row, chunk["start"] / SAMPLE_RATE, chunk["end"] / SAMPLE_RATE))
    pieces.sort(key=lambda turn: (turn.start, turn.end))
    # One side's speech with no word from the other in between is one turn.
    turns: list[Turn] = []
    for piece in pieces:
        if turns and turns[-1].speaker == piece.speaker:
            last = turns[-1]
            turns[-1] = Turn(last.speaker, last.channel, last.start, max(last.end, piece.end))
        else:
            turns.append(piece)
    return turns


def transcribe_call(transcriber: Transcriber, channels: np.ndarray, *, rep_channel: str = "left") -> Transcript:
    """Transcribe a two-channel call into `REP: ...` / `PROSPECT: ...` lines, one per turn.

    Each turn is transcribed alone, so its words cannot drift into the other speaker's turn; the
    segments keep their times in the call and start with their speaker's label.
    """
    lines: list[tuple[str, str]] = []
    segments: list[Segment] = []
    model = transcriber.model_name
    for turn in find_turns(channels, rep_channel):
        start = int(turn.start * SAMPLE_RATE)
        said = transcriber.transcribe(channels[turn.channel, start:int(turn.end * SAMPLE_RATE)])
        model = said.model or model
        if not said.text:
            continue  # a cough or a click that VAD took for speech
        segments += [Segment(round(turn.start + s.start, 3), round(turn.start + s.end, 3), f"{turn.speaker}: {s.text}")
                     for s in said.segments]
        if lines and lines[-1][0] == turn.speaker:  # the turn between them had no words
            lines[-1] = (turn.speaker, f"{lines[-1][1]} {said.text}")
        else:
            lines.append((turn.speaker, said.text))
    text = "\n".join(f"{speaker}: {words}" for speaker, words in lines)
    return Transcript(text, segments, "en", channels.shape[-1] / SAMPLE_RATE, model)


def _is_bleed(channels: np.ndarray, row: int, start: int, end: int) -> bool:
    own = _rms(channels[row, start:end])
    other = _rms(channels[1 - row, start:end])
    return own < BLEED_RATIO * other


def _rms(samples: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(samples, dtype=np.float64)))) if samples.size else 0.0
