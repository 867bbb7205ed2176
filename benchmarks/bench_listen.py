#!/usr/bin/env python3
"""`debrief listen`: time from the end of speech to the first sample of the spoken fix.

Debriefs of about 30, 60 and 120 seconds are rendered with the Piper voice from the sample
sentences (with pauses of 0.35 to 0.8 s between them, as people leave), followed by 4 s of
silence, and fed through the microphone's code path at real-time pace with the models warm.
For each, it prints (medians over --runs):

  detected     last word -> end of speech detected (the trailing silence, --silence, plus VAD lag)
  transcript   end detected -> every piece transcribed (most were, while the rep was talking)
  diagnosis    end detected -> the walk's diagnosis
  fix audio    end detected -> the spoken fix synthesized: speak() plays its first sample then
  whole        for comparison: transcribing the whole debrief only once it has ended

The target (issue 4) is fix audio <= 2 s for 60 s of speech, on 2 cores.

    .venv/bin/python benchmarks/bench_listen.py [--sizes 30 60 120] [--runs 1] [--silence 2.5]
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import statistics
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402

from debrief import speech  # noqa: E402
from debrief.audio import SAMPLE_RATE  # noqa: E402
from debrief.conversation import Companion, replayed  # noqa: E402
from debrief.speech import Voice  # noqa: E402
from debrief.pipeline import Analyzer  # noqa: E402
from debrief.recording import Limits  # noqa: E402

PAUSES = (0.35, 0.5, 0.8, 0.4, 0.6)  # seconds between sentences, in turn
TAIL = 4.0  # silence after the last word: longer than the trailing silence, so the VAD ends it


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                   if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    libs = ", ".join(f"{p} {_version(p)}" for p in ("faster-whisper", "ctranslate2", "onnxruntime", "piper-tts"))
    return (f"cpu:    {cpu}\ncores:  {os.cpu_count()} logical, {usable} usable; no GPU used\n"
            f"system: {platform.system()} {platform.release()}, Python {platform.python_version()}\nlibs:   {libs}")


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "?"


def sentences() -> list[str]:
    """The sample debriefs' sentences, speaker labels dropped, in a fixed order."""
    found = []
    for path in sorted((REPO / "samples").glob("*.txt")):
        text = re.sub(r"^\s*(REP|PROSPECT)\s*:", "", path.read_text(), flags=re.MULTILINE | re.IGNORECASE)
        found += [s.strip() for s in re.split(r"(?<=[.?!])\s+", " ".join(text.split())) if s.strip()]
    return found


def debrief_audio(seconds: float, pool: list[str]) -> tuple[np.ndarray, float]:
    """At least `seconds` of speech from `pool` (16 kHz), then TAIL of silence; and the speech length."""
    pieces, total = [], 0.0
    for index, sentence in enumerate(pool * 4):
        if total >= seconds:
            break
        audio, rate = speech.synthesize_piper(sentence)
        audio = speech.resample(audio, rate, SAMPLE_RATE)
        pause = speech.silence(PAUSES[index % len(PAUSES)], SAMPLE_RATE)
        pieces += [audio, pause]
        total += (len(audio) + len(pause)) / SAMPLE_RATE
    speech_only = np.concatenate(pieces[:-1])
    return np.concatenate([speech_only, speech.silence(TAIL, SAMPLE_RATE)]), len(speech_only) / SAMPLE_RATE


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=float, nargs="+", default=[30, 60, 120], help="seconds of speech")
    parser.add_argument("--runs", type=int, default=1, help="runs per size (median shown)")
    parser.add_argument("--silence", type=float, default=2.5, help="trailing silence that ends speech")
    args = parser.parse_args()
    print("debrief listen benchmark: end of speech -> first sample of the spoken fix")
    print(machine())

    home = tempfile.mkdtemp(prefix="debrief-bench-")
    os.environ["DEBRIEF_HOME"] = home  # the recordings and history of the runs go here, not to the user's
    analyzer = Analyzer(REPO / "models" / "baseline")
    companion = Companion(analyzer, Voice(to_dir=Path(home) / "spoken"), Limits(trailing_silence=args.silence))
    started = time.perf_counter()
    companion.warm_up()
    print(f"models loaded in {time.perf_counter() - started:.1f} s (before the prompt, once)")
    pool = sentences()
    warm, _ = debrief_audio(8, pool)
    companion.run(replayed([warm], pace=False))  # first inference allocates buffers

    print(f"\n{'speech':>7}{'segments':>10}{'detected':>10}{'transcript':>12}{'diagnosis':>11}{'fix audio':>11}"
          f"{'whole':>8}  fix")
    for seconds in args.sizes:
        audio, spoken = debrief_audio(seconds, pool)
        rows = []
        for _ in range(args.runs):
            done = companion.run(replayed([audio], pace=True))
            take_end = done.turns[-1].seconds
            rows.append((take_end - spoken, done.timings["wait_for_transcript"], done.timings["to_diagnosis"],
                         done.timings["to_speech"]))
        started = time.perf_counter()
        analyzer.transcriber.transcribe(audio)
        whole = time.perf_counter() - started
        med = [statistics.median(column) for column in zip(*rows)]
        fix = done.result.diagnosis.fix.step.id if done.result.diagnosis.fix else "nothing"
        pieces = len(done.result.transcript.segments)
        print(f"{spoken:>6.1f}s{pieces:>10}{med[0]:>9.2f}s{med[1]:>11.2f}s{med[2]:>10.2f}s{med[3]:>10.2f}s"
              f"{whole:>7.2f}s  {fix}")
    print(f"\nmedian of {args.runs} run(s) per size at real-time pace; 'segments' are Whisper's")
    return 0


if __name__ == "__main__":
    sys.exit(main())
