"""The flow from an input to a diagnosis: audio -> transcript -> evidence -> walk.

`Analyzer` loads the playbook and the classifier once, and the Whisper model once, on the first
audio input (a typed transcript never loads it), so many inputs share one set of models.

Touches: the input file or standard input (read only), and the models it loads once.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from debrief.classification import Classifier
from debrief.errors import InputError, NoSpeechError
from debrief.playbook import Playbook, load_playbook
from debrief.transcription import Transcriber, Transcript
from debrief.walk import Diagnosis, Evidence, diagnose

TEXT_SUFFIXES = (".txt", ".text", ".md")
STDIN = "-"


@dataclass
class Result:
    source: str
    transcript: Transcript
    diagnosis: Diagnosis
    timings: dict[str, float] = field(default_factory=dict)


class Analyzer:
    """Analyzes debriefs and call recordings against one playbook with one Whisper model."""

    def __init__(self, playbook: Playbook | str | Path, *, model: str = "tiny.en", models=None,
                 beam_size: int = 5, compute_type: str | None = None, device: str = "auto",
                 cpu_threads: int = 0, engine: str | None = None) -> None:
        self.playbook = playbook if isinstance(playbook, Playbook) else load_playbook(playbook)
        self.classifier = Classifier(self.playbook)
        # engine None: $DEBRIEF_ENGINE, else faster; device "auto" and compute_type None let the
        # Transcriber pick the GPU (float16) when there is one, else the CPU (int8 or float32).
        self.transcriber = Transcriber(model, models=models, engine=engine, device=device,
                                       compute_type=compute_type, beam_size=beam_size, cpu_threads=cpu_threads)

    def analyze(self, source: str | Path, *, rep_channel: str = "left") -> Result:
        """Analyze any input: a transcript (.txt, or `-` for standard input), a mono recording, or
        a two-channel call recording. The one entry for a file, whoever asks (analyze, batch and
        its Ray workers, the web desk).

        A call (the rep on one stereo channel, the prospect on the other, `calls.is_call`) is
        transcribed per channel and labelled `REP:` / `PROSPECT:` (`rep_channel` is the rep's);
        any other recording is downmixed and transcribed whole.

        Raises:
          InputError: the file is missing, empty or not audio.
          NoSpeechError: no speech in it (on any channel), or a transcript with no words.
        """
        source = str(source)
        if source == STDIN:
            return self.analyze_text(sys.stdin.read(), source=source)
        path = Path(source)
        if path.suffix.lower() in TEXT_SUFFIXES:
            return self.analyze_text(read_transcript(path), source=source)
        from debrief.audio import decode_channels
        from debrief.calls import is_call, transcribe_call

        started = time.perf_counter()
        channels = decode_channels(path)
        decoded = time.perf_counter() - started
        if not is_call(channels):
            # The mean over channels, as decode_audio gives it: a stereo file of one voice is mono.
            return self.analyze_audio(channels.mean(axis=0), source=source, decode_seconds=decoded)
        started = time.perf_counter()
        transcript = transcribe_call(self.transcriber, channels, rep_channel=rep_channel)
        transcribed = time.perf_counter() - started
        if not transcript.text:
            raise NoSpeechError(f"{source}: no speech found on either channel "
                                f"({transcript.duration:.1f} s of silence or noise); the transcript is empty")
        result = self.analyze_text(transcript.text, source=source)
        result.transcript = transcript
        result.timings.update(decode=decoded, transcribe=transcribed)
        return result

    def analyze_audio(self, audio: np.ndarray, *, source: str, decode_seconds: float = 0.0) -> Result:
        """Transcribe 16 kHz mono float32 audio, then classify and walk it."""
        started = time.perf_counter()
        transcript = self.transcriber.transcribe(audio)
        transcribe_seconds = time.perf_counter() - started
        if not transcript.text.strip():
            raise NoSpeechError(f"{source}: no speech found ({len(audio) / 16000:.1f} s of silence or noise); "
                                "the transcript is empty")
        result = self.read(transcript, source)
        result.timings = {"decode": decode_seconds, "transcribe": transcribe_seconds, **result.timings}
        return result

    def analyze_text(self, text: str, *, source: str = STDIN) -> Result:
        """Classify and walk a transcript someone typed or saved."""
        if not text.strip():
            raise NoSpeechError(f"{source}: the transcript has no words")
        result = self.read(Transcript.from_text(text), source)
        result.timings = {"decode": 0.0, "transcribe": 0.0, **result.timings}
        return result

    def read(self, transcript: Transcript, source: str, answered: tuple[Evidence, ...] = ()) -> Result:
        """Classify and walk a transcript however it was made (a file, the answers of `listen`).

        `answered`: evidence from the answers to questions the companion asked about a step
        (`asking.py`), added to what the classifier read."""
        started = time.perf_counter()
        findings = self.classifier.classify(transcript.text, transcript.segment_starts())
        if answered:
            from debrief.asking import with_checks

            findings = with_checks(findings, tuple(answered))
        classified = time.perf_counter()
        diagnosis = diagnose(self.playbook, findings)
        walked = time.perf_counter()
        return Result(source, transcript, diagnosis,
                      {"classify": classified - started, "walk": walked - classified})


def read_transcript(path: Path) -> str:
    """A typed transcript's text, or an InputError that names the file and the problem."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"{path}: is a folder, not a transcript") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror or exc}") from None
    if not data:
        raise InputError(f"{path}: empty file")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InputError(f"{path}: not a UTF-8 text file") from None
