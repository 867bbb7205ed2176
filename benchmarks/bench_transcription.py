"""Benchmark stages 1 and 2 on real speech: decode time, transcription time, real-time factor, WER.

Run from the repository root:

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/bench_transcription.py [--threads N] [--model NAME]

Clips: the shared speech clips (`tests/data/audio/`) and any `samples/*.wav`; a
`.txt` beside a clip is its reference transcript. Each configuration (beam 5, greedy) is
warmed up once on the first clip before timing, then timed `--repeat` times (median
reported; a small shared VM is noisy). Real-time factor = transcription seconds
/ audio seconds (below 1 is faster than real time).
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
try:
    import debrief  # noqa: F401
except ImportError:  # a source checkout, not installed
    sys.path.insert(0, str(REPO / "src"))

import ctranslate2  # noqa: E402
import faster_whisper  # noqa: E402

from debrief.audio import decode_audio, duration  # noqa: E402
from debrief.transcription import Transcriber  # noqa: E402

SHARED_AUDIO = REPO / "tests" / "data" / "audio"
_SPELLED_OUT = {"mr": "mister", "mrs": "missus"}


def normalise(text: str) -> str:
    """The same word normalisation as tests/test_transcription.py."""
    text = text.lower().replace("-", " ").replace("'", "")
    words = re.sub(r"[^\w\s]", " ", text).split()
    return " ".join(_SPELLED_OUT.get(word, word) for word in words)


def word_error_rate(reference: str, hypothesis: str) -> float | None:
    try:
        import jiwer
    except ImportError:
        return None
    return jiwer.wer(normalise(reference), normalise(hypothesis))


def clips() -> list[Path]:
    found = []
    if SHARED_AUDIO.is_dir():
        found += sorted(p for p in SHARED_AUDIO.iterdir() if p.suffix in {".flac", ".wav"})
    found += sorted((REPO / "samples").glob("*.wav"))
    return found


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="tiny.en")
    parser.add_argument("--threads", type=int, default=0, help="cpu_threads (0: OMP_NUM_THREADS, else 4)")
    parser.add_argument("--beams", type=int, nargs="+", default=[5, 1])
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per clip; the median is shown")
    args = parser.parse_args()

    paths = clips()
    if not paths:
        sys.exit(f"no clips found in {SHARED_AUDIO} or {REPO / 'samples'}")

    print(
        f"# {cpu_model()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"faster-whisper {faster_whisper.__version__}, ctranslate2 {ctranslate2.__version__}, "
        f"model {args.model} int8, cpu_threads={args.threads}"
        f"{' (OMP_NUM_THREADS=' + os.environ['OMP_NUM_THREADS'] + ')' if 'OMP_NUM_THREADS' in os.environ else ''}"
    )

    decoded = {}
    for path in paths:
        started = time.perf_counter()
        audio = decode_audio(path)
        decoded[path] = (audio, time.perf_counter() - started)

    print(f"{'clip':<28} {'beam':>4} {'audio s':>8} {'decode s':>9} {'transcribe s':>13} {'RTF':>6} {'WER':>7}")
    for beam in args.beams:
        transcriber = Transcriber(args.model, beam_size=beam, cpu_threads=args.threads)
        transcriber.transcribe(decoded[paths[0]][0])  # warm-up: model load and first-call costs
        for path in paths:
            audio, decode_seconds = decoded[path]
            timings = []
            for _ in range(max(1, args.repeat)):
                started = time.perf_counter()
                transcript = transcriber.transcribe(audio)
                timings.append(time.perf_counter() - started)
            seconds = statistics.median(timings)
            reference = path.with_suffix(".txt")
            wer = word_error_rate(reference.read_text(), transcript.text) if reference.is_file() else None
            print(
                f"{path.name:<28} {beam:>4} {duration(audio):>8.2f} {decode_seconds:>9.3f} "
                f"{seconds:>13.2f} {seconds / duration(audio):>6.3f} "
                f"{'-' if wer is None else f'{wer:.1%}':>7}"
            )


if __name__ == "__main__":
    main()
