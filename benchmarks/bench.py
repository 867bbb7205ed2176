"""`make bench`: how long each stage of `debrief analyze` takes, per sample, on this machine.

Prints, for each samples/*.wav: audio length, decode, transcription (and its real-time factor),
classification and walk times (models warm, median of --repeat runs); then classification + walk
for a two-minute debrief; then the wall time of `debrief analyze` as a fresh process, for a .txt
(start-up to first output, against importing spaCy and building a blank pipeline in the same run)
and for a recording; then what the learned reader costs: peak memory of a fresh `analyze` with it
and with the rules alone, and training the baseline playbook's reader from scratch (an empty
cache). Figures are for the machine named in the header.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from debrief.audio import decode_audio, duration  # noqa: E402
from debrief.pipeline import Analyzer  # noqa: E402
from debrief.walk import diagnose  # noqa: E402


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import ctranslate2
    import faster_whisper
    import spacy

    return (f"{cpu}; {os.cpu_count()} cores; Python {platform.python_version()}; faster-whisper "
            f"{faster_whisper.__version__}, ctranslate2 {ctranslate2.__version__}, spaCy {spacy.__version__}")


def timed(fn, repeat: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


def wall(args: list[str], repeat: int) -> float:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    debrief = [sys.executable, "-m", "debrief"]
    return timed(lambda: subprocess.run(debrief + args, capture_output=True, env=env, check=True), repeat)[0]


def peak_memory(args: list[str], env: dict | None = None) -> float:
    """Peak resident memory (MB) of `debrief ARGS` as a fresh process, by GNU time."""
    out = subprocess.run(["/usr/bin/time", "-f", "%M", sys.executable, "-m", "debrief", *args],
                         capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})},
                         check=True)
    return int(out.stderr.strip().splitlines()[-1]) / 1024


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--beam-size", type=int, default=5)
    args = parser.parse_args()
    print(f"# {machine()}")
    print(f"# tiny.en int8, beam {args.beam_size}, median of {args.repeat}; times in seconds\n")
    analyzer = Analyzer(REPO / "models" / "baseline", beam_size=args.beam_size)
    wavs = sorted((REPO / "samples").glob("*.wav"))
    analyzer.analyze(wavs[0])  # load the model and warm up
    print(f"{'sample':<26}{'audio':>7}{'decode':>8}{'transcribe':>12}{'RTF':>7}{'classify':>10}{'walk':>8}")
    rtfs = []
    for wav in wavs:
        decode, audio = timed(lambda: decode_audio(wav), args.repeat)
        seconds = duration(audio)
        transcribe, transcript = timed(lambda: analyzer.transcriber.transcribe(audio), args.repeat)
        classify, findings = timed(lambda: analyzer.classifier.classify(transcript.text, transcript.segment_starts()), args.repeat)
        walk, _ = timed(lambda: diagnose(analyzer.playbook, findings), args.repeat)
        rtfs.append(transcribe / seconds)
        print(f"{wav.stem:<26}{seconds:>7.1f}{decode:>8.3f}{transcribe:>12.2f}{transcribe / seconds:>7.3f}"
              f"{classify * 1000:>8.1f}ms{walk * 1000:>6.2f}ms")
    print(f"{'mean real-time factor':<26}{'':>27}{statistics.mean(rtfs):>7.3f}\n")

    # A two-minute debrief: about 150 spoken words a minute.
    texts = [p.read_text() for p in sorted((REPO / "samples").glob("*.txt"))]
    words = " ".join(texts).split()
    long_text = " ".join((words * 3)[:300])
    both, _ = timed(lambda: analyzer.analyze_text(long_text, source="bench"), max(args.repeat, 5))
    print(f"classification + walk, two-minute debrief ({len(long_text.split())} words): {both * 1000:.1f} ms\n")

    txt = REPO / "samples" / "stalled-after-demo.txt"
    blank = timed(lambda: subprocess.run([sys.executable, "-c", "import spacy; spacy.blank('en')"], check=True),
                  args.repeat)[0]
    fresh = wall(["analyze", str(txt)], args.repeat)
    print(f"debrief analyze {txt.name} (fresh process, start-up to output): {fresh:.2f} s; importing spaCy and "
          f"a blank pipeline: {blank:.2f} s; ratio {fresh / blank:.2f}")
    wav = REPO / "samples" / "stalled-after-demo.wav"
    print(f"debrief analyze {wav.name} (fresh process, {duration(decode_audio(wav)):.0f} s of audio): "
          f"{wall(['analyze', str(wav)], args.repeat):.2f} s")

    with tempfile.TemporaryDirectory() as scratch:
        rules_alone = Path(scratch) / "rules-alone"
        shutil.copytree(REPO / "models" / "baseline", rules_alone)
        (rules_alone / "examples.jsonl").write_text("")
        with_reader = peak_memory(["analyze", str(txt)])
        without = peak_memory(["analyze", "--playbook", str(rules_alone), str(txt)])
        print(f"peak memory of a fresh analyze on a .txt: {with_reader:.0f} MB with the reader, {without:.0f} MB "
              f"with the rules alone: the reader adds {with_reader - without:.0f} MB")
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "debrief", "playbook", "train", "--force"], check=True,
                       capture_output=True, env={**os.environ, "DEBRIEF_CACHE": str(Path(scratch) / "cache")})
        examples = sum(1 for line in (REPO / "models" / "baseline" / "examples.jsonl").open() if line.strip())
        print(f"training the baseline reader from scratch ({examples} examples, empty cache, fresh process): "
              f"{time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
