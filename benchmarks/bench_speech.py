#!/usr/bin/env python3
"""Speed of the speaking stage: piper (joe voice) synthesis on this machine's CPU.

For a one-sentence and a four-sentence coaching text, after a warm-up, prints the median
over --runs of:
  first audio  time until piper hands over the first sentence's audio (what a streaming
               player could start on; speak() today plays after the whole text is ready)
  synth total  time to synthesize the whole text (speak() adds only device start-up)
  audio        length of the speech produced
  RTF          real-time factor = synth total / audio (below 1 is faster than real time)
  save 16k     synthesize + resample to 16 kHz + atomic WAV write (save_speech)

    PYTHONPATH=src python benchmarks/bench_speech.py [--runs 5]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from debrief import speech  # noqa: E402

SHORT = "Next time, ask what the missed shipments cost them."
LONG = (
    "Next time, ask what the missed shipments cost them. "
    "Put a number on it before you talk about price. "
    "Then ask who else feels that cost every month. "
    "Close by agreeing on a date to review those numbers together."
)


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "?"


def header() -> str:
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return "\n".join(
        [
            "debrief speech benchmark (piper, joe en_US medium, 22.05 kHz)",
            f"cpu:     {cpu_model()}",
            f"cores:   {os.cpu_count()} logical, {usable} usable by this process; no GPU used",
            f"system:  {platform.system()} {platform.release()}, Python {platform.python_version()}",
            f"libs:    piper-tts {version('piper-tts')}, onnxruntime {version('onnxruntime')}, "
            f"av {version('av')}, numpy {version('numpy')}",
        ]
    )


def time_synthesis(text: str) -> tuple[float, float, float]:
    """(seconds to first chunk, seconds total, seconds of audio) for one piper synthesis."""
    start = time.perf_counter()
    first = None
    samples, rate, chunks = 0, 22050, 0
    for audio, rate in speech.piper_chunks(text):
        if first is None:
            first = time.perf_counter() - start
        samples += len(audio)
        chunks += 1
    total = time.perf_counter() - start
    samples += (chunks - 1) * len(speech.silence(speech.SENTENCE_PAUSE_S, rate))
    return first or total, total, samples / rate


def time_save(text: str, folder: str) -> float:
    start = time.perf_counter()
    speech.save_speech(text, Path(folder) / "bench.wav", engine="piper", rate=16000)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description="piper synthesis speed")
    parser.add_argument("--runs", type=int, default=5, help="timed runs per text (median shown)")
    args = parser.parse_args()

    print(header())
    start = time.perf_counter()
    speech.piper_voice()
    print(f"voice load (cold, once per process): {time.perf_counter() - start:.2f} s")
    time_synthesis("Warming up the voice.")  # first inference allocates buffers

    print()
    print(f"{'text':<22}{'first audio':>12}{'synth total':>13}{'audio':>8}{'RTF':>7}{'save 16k':>10}")
    with tempfile.TemporaryDirectory() as folder:
        for label, text in (("short (1 sentence)", SHORT), ("long (4 sentences)", LONG)):
            runs = [time_synthesis(text) for _ in range(args.runs)]
            first = statistics.median(r[0] for r in runs)
            total = statistics.median(r[1] for r in runs)
            audio = statistics.median(r[2] for r in runs)
            save = statistics.median(time_save(text, folder) for _ in range(args.runs))
            print(
                f"{label:<22}{first * 1000:>9.0f} ms{total * 1000:>10.0f} ms"
                f"{audio:>7.2f}s{total / audio:>7.3f}{save * 1000:>7.0f} ms"
            )
    print(f"\nmedian of {args.runs} runs after one warm-up; audio length varies run to run (piper samples noise)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
