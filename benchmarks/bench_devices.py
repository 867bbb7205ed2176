"""Each engine with --device auto, cuda and cpu, on the same clips: what it ran on, and the words.

Run from the repository root on a machine with a GPU (needs the openai extra):

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/bench_devices.py

For faster-whisper and openai-whisper (tiny.en; openai-whisper runs the checkpoint converted from
the packaged CTranslate2 model into a temporary folder), and for each of `--device auto`, `cuda`
and `cpu`: the device and precision the transcriber really used (auto falls back to the CPU when
the GPU is seen but cannot run the engine; cuda then fails with one line, printed here), the load
time, the transcription time over the samples and the shared clips after one warm-up, the
real-time factor, and whether the GPU gives the same words as the CPU, clip by clip.
"""

from __future__ import annotations

import json
import logging
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
try:
    import debrief  # noqa: F401
except ImportError:  # a source checkout, not installed
    sys.path.insert(0, str(REPO / "src"))

from debrief.audio import SAMPLE_RATE, decode_audio  # noqa: E402
from debrief.errors import DebriefError  # noqa: E402

sys.path.insert(0, str(REPO / "benchmarks"))
from bench_engines import SHARED_AUDIO, machine, normalise, versions  # noqa: E402

ENGINES = ("faster", "openai")
DEVICES = ("auto", "cuda", "cpu")


def main() -> int:
    from debrief.convert import import_model
    from debrief.transcription import Transcriber

    logging.basicConfig(level=logging.WARNING, format="%(name)s: %(message)s")  # the fallback's warning
    clips = sorted((REPO / "samples").glob("*.wav")) + sorted(SHARED_AUDIO.glob("*.flac"))
    audio = [decode_audio(path) for path in clips]
    total = sum(len(a) for a in audio) / SAMPLE_RATE
    print(f"machine: {machine()}\nsoftware: {versions()}\n{len(clips)} clips, {total:.0f} s of audio; tiny.en, beam 5")
    texts: dict[tuple[str, str], list[str]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-devices-") as models:
        import_model(["tiny.en"], models=models)
        for engine in ENGINES:
            for asked in DEVICES:
                transcriber = Transcriber(models=models, engine=engine, device=asked)
                try:
                    started = time.perf_counter()
                    transcriber.load()
                    load = time.perf_counter() - started
                    transcriber.transcribe(audio[-1])  # warm-up
                    started = time.perf_counter()
                    texts[engine, asked] = [normalise(transcriber.transcribe(a).text) for a in audio]
                    wall = time.perf_counter() - started
                except DebriefError as exc:
                    print(json.dumps({"engine": engine, "asked": asked, "error": str(exc)}), flush=True)
                    continue
                print(json.dumps({"engine": engine, "asked": asked, "device": transcriber.device,
                                  "compute": transcriber.compute_type, "load_s": round(load, 2),
                                  "wall_s": round(wall, 2), "rtf": round(wall / total, 4)}), flush=True)
    for engine in ENGINES:
        for asked in ("cuda", "auto"):
            if (engine, asked) in texts and (engine, "cpu") in texts:
                pairs = list(zip(clips, texts[engine, asked], texts[engine, "cpu"]))
                print(f"{engine}: {asked} vs cpu: same words in {sum(a == b for _, a, b in pairs)}/{len(pairs)} clips")
                for clip, a, b in pairs:
                    if a != b:
                        print(f"  {clip.name}\n    {asked}: {a}\n    cpu:  {b}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
