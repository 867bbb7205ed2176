"""`make bench-engines`: faster-whisper against openai-whisper on the same clips, in one run, one table.

Run from the repository root (needs the openai extra):

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/bench_engines.py [--long-minutes 5] [--rounds 2] [--device auto]

For each engine and precision (faster-whisper int8 and float32, openai-whisper float32 on a CPU;
int8_float16, float16 and float16 on a GPU) and for beam-5 and greedy decoding, on three sets:
the shared clips (`tests/data/audio`), the samples (`samples/*.wav`, whose `.txt` they were rendered
from is the reference) and a long recording made of both, repeated to `--long-minutes`:
transcription time (wall and CPU), real-time factor, word error rate and peak memory, and how
many times faster than openai-whisper each one is. The openai-whisper checkpoint is converted
from the packaged CTranslate2 model first (`debrief models import`), into a temporary folder.

Each (configuration, set) runs in its own fresh process, so that peak memory (maximum resident
set size, model and libraries included) is that configuration's own; each process transcribes
jfk.flac once before timing, so that the figures are warm. Both engines get the same number of
CPU threads (`--threads`, default: all cores). Writes the table to benchmarks/engines.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
try:
    import debrief  # noqa: F401
except ImportError:  # a source checkout, not installed
    sys.path.insert(0, str(REPO / "src"))

from debrief.audio import SAMPLE_RATE, decode_audio  # noqa: E402

SHARED_AUDIO = REPO / "tests" / "data" / "audio"
OUTPUT = REPO / "benchmarks" / "engines.md"
CONFIGS = {  # device -> (engine, precision) in table order; openai last, the reference for the ratios
    "cpu": [("faster", "int8"), ("faster", "float32"), ("openai", "float32")],
    "cuda": [("faster", "int8_float16"), ("faster", "float16"), ("openai", "float16")],
}
BEAMS = (5, 1)
ENGINE_NAMES = {"faster": "faster-whisper", "openai": "openai-whisper"}
GAP_SECONDS = 1.0  # silence between the pieces of the long recording
_SPELLED_OUT = {"mr": "mister", "mrs": "missus"}


def normalise(text: str) -> str:
    """The same word normalisation as tests/test_transcription.py."""
    text = text.lower().replace("-", " ").replace("'", "")
    words = re.sub(r"[^\w\s]", " ", text).split()
    return " ".join(_SPELLED_OUT.get(word, word) for word in words)


def word_error_rate(references: list[str], hypotheses: list[str]) -> float:
    import jiwer

    return jiwer.wer([normalise(r) for r in references], [normalise(h) for h in hypotheses])


# --- the worker: one configuration on one set, in a fresh process -------------------------------


def worker(args: argparse.Namespace) -> None:
    from debrief.transcription import Transcriber

    pieces = np.load(Path(args.work) / f"{args.set}.npz")
    warmup = np.load(Path(args.work) / "warmup.npy")
    transcriber = Transcriber(args.model, models=args.models, engine=args.engine, device=args.device,
                              compute_type=args.compute, beam_size=args.beam, cpu_threads=args.threads)
    started = time.perf_counter()
    transcriber.load()
    load_seconds = time.perf_counter() - started
    transcriber.transcribe(warmup)
    texts, wall, cpu = [], 0.0, 0.0
    for name in pieces.files:
        started, started_cpu = time.perf_counter(), time.process_time()
        texts.append(transcriber.transcribe(pieces[name]).text)
        wall += time.perf_counter() - started
        cpu += time.process_time() - started_cpu
    peak_mb = peak_memory_mb()
    print(json.dumps({"texts": texts, "wall": wall, "cpu": cpu, "load": load_seconds, "peak_mb": peak_mb,
                      "device": transcriber.device, "compute": transcriber.compute_type}))


def peak_memory_mb() -> float:
    """This process's peak resident memory. Not getrusage's ru_maxrss: Linux carries that across
    exec, so a worker would report the larger parent that started it; VmHWM starts afresh."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024  # kB
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # elsewhere: KiB on Linux, bytes on macOS


def run_worker(work: Path, models: Path, set_name: str, engine: str, compute: str, beam: int,
               args: argparse.Namespace) -> dict:
    command = [sys.executable, __file__, "--worker", "--work", str(work), "--models", str(models),
               "--set", set_name, "--engine", engine, "--compute", compute, "--beam", str(beam),
               "--device", args.device, "--threads", str(args.threads), "--model", args.model]
    done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    if done.returncode:  # one configuration that cannot run (an engine without its GPU libraries) is a row
        lines = done.stderr.strip().splitlines() or [f"exit code {done.returncode}"]
        print(done.stderr[-2000:], file=sys.stderr)
        return {"error": lines[-1], "compute": compute}
    return json.loads(done.stdout.strip().splitlines()[-1])


# --- the sets ---------------------------------------------------------------------------------


def load_sets(long_minutes: float) -> dict[str, list[tuple[str, np.ndarray, str]]]:
    """name -> [(piece, samples, reference)]: the clips, the samples, and the long recording."""
    def with_references(paths):
        return [(p.name, decode_audio(p), p.with_suffix(".txt").read_text())
                for p in sorted(paths) if p.suffix in (".flac", ".wav") and p.with_suffix(".txt").exists()]

    clips = with_references(SHARED_AUDIO.glob("*"))
    samples = with_references((REPO / "samples").glob("*.wav"))
    if not clips or not samples:
        sys.exit(f"clips not found in {SHARED_AUDIO} or {REPO / 'samples'}")
    gap = np.zeros(int(GAP_SECONDS * SAMPLE_RATE), dtype=np.float32)
    audio, references, target = [], [], long_minutes * 60 * SAMPLE_RATE
    while sum(len(a) for a in audio) < target:  # whole pieces, in turn, until it is long enough
        for _, samples_, reference in clips + samples:
            if sum(len(a) for a in audio) >= target:
                break
            audio += [samples_, gap]
            references.append(reference)
    long = [("long", np.concatenate(audio), " ".join(references))]
    return {"clips": clips, "samples": samples, "long": long}


def seconds(pieces: list[tuple[str, np.ndarray, str]]) -> float:
    return sum(len(a) for _, a, _ in pieces) / SAMPLE_RATE


# --- the run, and the table -------------------------------------------------------------------


def machine() -> str:
    cpu = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").exists() else []:
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{cpu}, {os.cpu_count()} cores, {memory:.0f} GiB RAM, {platform.system()} {platform.release()}{gpu()}"


def gpu() -> str:
    """"; GPU: name (memory, driver ...)" from nvidia-smi, or nothing on a machine without one."""
    try:
        found = subprocess.run(["nvidia-smi", "--query-gpu=name,memory.total,driver_version", "--format=csv,noheader"],
                               capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    cards = [line.split(", ") for line in found.stdout.splitlines() if line.count(", ") == 2]
    if found.returncode or not cards:
        return ""
    return "; GPU: " + "; ".join(f"{name} ({memory}, driver {driver})" for name, memory, driver in cards)


def versions() -> str:
    from importlib import metadata

    names = ["faster-whisper", "ctranslate2", "openai-whisper", "torch"]
    return ", ".join(f"{n} {metadata.version(n)}" for n in names) + f", Python {platform.python_version()}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="tiny.en")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="CPU threads for both engines")
    parser.add_argument("--long-minutes", type=float, default=5.0,
                        help="length of the long recording (10 did not fit 15 minutes on a busy 2-core machine)")
    parser.add_argument("--rounds", type=int, default=2, help="runs of every configuration; the best is shown")
    parser.add_argument("--output", type=Path, default=OUTPUT)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    for hidden in ("--work", "--models", "--set", "--engine", "--compute"):
        parser.add_argument(hidden, help=argparse.SUPPRESS)
    parser.add_argument("--beam", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args)

    from debrief.convert import import_model
    from debrief.transcription import select_device

    began, load_before = time.perf_counter(), os.getloadavg()
    device = select_device(args.device, "faster")
    if device != select_device(args.device, "openai"):
        sys.exit("the two engines see different devices; pass --device cpu or --device cuda")
    sets = load_sets(args.long_minutes)
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-engines-") as tmp:
        work, models = Path(tmp) / "audio", Path(tmp) / "models"
        work.mkdir()
        for name, pieces in sets.items():
            np.savez(work / f"{name}.npz", **{f"{i:02d}": a for i, (_, a, _) in enumerate(pieces)})
        np.save(work / "warmup.npy", decode_audio(SHARED_AUDIO / "jfk.flac"))
        imported = import_model([args.model], models=models)
        print(f"converted {args.model} for openai-whisper in {imported.seconds:.1f} s", file=sys.stderr)
        # Rounds, each over every configuration in turn: a burst of other work on the machine slows
        # one configuration in one round, and the best of the rounds leaves it out.
        runs: dict[tuple, list[dict]] = {}
        failed: dict[tuple, str] = {}  # configurations that could not run, and why
        for round_ in range(1, args.rounds + 1):
            for beam in BEAMS:
                for name, pieces in sets.items():
                    for engine, compute in CONFIGS[device]:
                        result = run_worker(work, models, name, engine, compute, beam, args)
                        if "error" in result:
                            failed[(name, beam, engine, compute)] = result["error"]
                            print(f"round {round_} {name:8} beam {beam} {engine:6} {compute:8} failed: "
                                  f"{result['error']}", file=sys.stderr)
                            continue
                        result["wer"] = word_error_rate([r for _, _, r in pieces], result.pop("texts"))
                        runs.setdefault((name, beam, engine, compute), []).append(result)
                        print(f"round {round_} {name:8} beam {beam} {engine:6} {result['compute']:8} "
                              f"{result['wall']:7.1f} s (CPU {result['cpu']:.1f} s)  WER {result['wer']:.1%}  "
                              f"{result['peak_mb']:.0f} MB", file=sys.stderr)
        for (name, beam, engine, _), results in runs.items():
            best = min(results, key=lambda r: r["wall"])
            rows.append({**best, "set": name, "audio": seconds(sets[name]), "engine": engine, "beam": beam,
                         "others": [r["wall"] for r in results if r is not best],
                         "peak_mb": max(r["peak_mb"] for r in results)})
        for (name, beam, engine, compute), error in failed.items():
            if (name, beam, engine, compute) not in runs:
                rows.append({"set": name, "engine": engine, "beam": beam, "compute": compute, "error": error})
    elapsed = time.perf_counter() - began
    args.output.write_text(report(rows, sets, device, args, elapsed, imported.seconds, load_before, os.getloadavg()))
    print(f"wrote {args.output} in {elapsed / 60:.1f} min", file=sys.stderr)


def report(rows, sets, device, args, elapsed, convert_seconds, load_before, load_after) -> str:
    openai = {(r["set"], r["beam"]): r["wall"] for r in rows if r["engine"] == "openai"}
    lines = [
        "# Transcription engines, side by side",
        "",
        f"`make bench-engines` ({Path(__file__).name}), {date.today().isoformat()}, one run of {elapsed / 60:.1f} min.",
        "",
        f"- Machine: {machine()}; device: **{device}**; {args.threads} threads for each engine.",
        f"- Load average (1, 5, 15 min) at the start {', '.join(f'{x:.1f}' for x in load_before)}, "
        f"at the end {', '.join(f'{x:.1f}' for x in load_after)}. Where other work shares the cores, a run "
        "slows and its CPU seconds grow too (waiting threads spin); the table shows the best of the rounds and "
        "the other runs beside it, so the noise can be seen.",
        f"- Software: {versions()}.",
        f"- Model: {args.model}; openai-whisper runs the checkpoint `debrief models import {args.model}` "
        f"converted from the packaged CTranslate2 model ({convert_seconds:.1f} s).",
        "- Both engines cut silence with the same voice activity detection (Silero, faster-whisper's) and use "
        "the same decoding options (temperature fallback 0.0 to 1.0, best of 5, no conditioning on previous text).",
        "",
        f"| set | audio | engine | precision | decoding | transcription, best of {args.rounds} | other runs | CPU "
        "| real-time factor | WER | peak memory | speed vs openai-whisper |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    failed: dict[tuple[str, str], list[str]] = {}  # (engine, error) -> its precisions that could not run
    for r in rows:
        if "error" in r:
            precisions = failed.setdefault((r["engine"], r["error"]), [])
            precisions += [r["compute"]] if r["compute"] not in precisions else []
            continue
        reference = openai.get((r["set"], r["beam"]))
        ratio = f"{reference / r['wall']:.2f}×" if reference else "-"
        lines.append(
            f"| {r['set']} | {r['audio']:.0f} s | {ENGINE_NAMES[r['engine']]} "
            f"| {r['compute']} | {'beam 5' if r['beam'] > 1 else 'greedy'} | {r['wall']:.1f} s "
            f"| {', '.join(f'{o:.1f} s' for o in r['others']) or '-'} | {r['cpu']:.1f} s "
            f"| {r['wall'] / r['audio']:.3f} | {r['wer']:.1%} | {r['peak_mb']:.0f} MB | {ratio} |")
    clips = ", ".join(name for name, _, _ in sets["clips"])
    lines += [""] + [f"**Did not run here**: {ENGINE_NAMES[engine]} {' and '.join(precisions)}: {error}"
                     for (engine, error), precisions in failed.items()]
    lines += [
        "",
        f"Sets: **clips** = {clips} (`tests/data/audio`, real speech, LibriSpeech and a public speech); "
        f"**samples** = the {len(sets['samples'])} `samples/*.wav` debriefs, rendered by the Piper voice from "
        "their `.txt`, which is the reference; **long** = the clips and the samples in turn, 1 s of silence "
        f"between them, repeated to {args.long_minutes:g} minutes, as one recording.",
        "",
        "Real-time factor = transcription seconds / audio seconds (below 1 is faster than real time). Speed vs "
        "openai-whisper = openai-whisper's transcription time / this one's, same set and decoding. WER is over "
        "the set's words after lowercasing and dropping punctuation; numbers count as errors where Whisper "
        "writes digits and the reference words (\"30,000\" for \"thirty thousand\"), which weighs on the samples "
        "and the long recording alike for every engine. Peak memory is the process's maximum resident set, "
        "Python, the engine's libraries and the model included.",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
