"""Stage 2: speech to text with Whisper, on this machine, with no network by default.

Two engines run the same models behind one interface and give the same `Transcript`:
  "faster" - faster-whisper on CTranslate2, the default: 2 to 3 times as fast on a CPU
             (benchmarks/engines.md);
  "openai" - openai-whisper on torch, the optional extra `debrief[openai]`.
Where each model is found (the packaged `tiny.en`, `<models>/whisper/<name>/`, a path, an
imported openai-whisper checkpoint) is `whisper_models.py`'s job; this module loads and runs it.

Touches: the model files (read only) and the CPU or GPU; the network only for a hub model when not offline.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from debrief.audio import SAMPLE_RATE
from debrief.errors import ModelError
from debrief.whisper_models import (DEFAULT_ENGINE, DEFAULT_MODEL, check_engine, default_engine,
                                    import_openai_whisper, not_local, offline, one_line, resolve_model)

logger = logging.getLogger(__name__)

DEVICES = ("auto", "cpu", "cuda")
# faster-whisper's defaults, given to openai-whisper too so that the engines decode alike.
_TEMPERATURES = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
_BEST_OF = 5
_ENCODER_FRAMES = 3000  # Whisper's encoder takes 30 s of audio, 100 mel frames a second
# What each engine needs to use a CUDA GPU, for the error when it cannot.
GPU_HINTS = {
    "faster": "CTranslate2 needs CUDA 12's cuBLAS (libcublas.so.12) on the library path",
    "openai": "torch needs a CUDA build that supports this GPU and free GPU memory",
}


@dataclass
class Segment:
    """A stretch of speech: seconds from the start of the audio, and what was said."""

    start: float
    end: float
    text: str


@dataclass
class Transcript:
    """What was said, as one text and as timed segments."""

    text: str
    segments: list[Segment] = field(default_factory=list)
    language: str = "en"
    duration: float = 0.0
    model: str = ""

    def segment_starts(self) -> tuple[int, ...]:
        """Where each segment after the first begins in `text`: a sentence starts there, whatever
        the punctuation (the classifier reads Whisper's segments as sentences)."""
        return tuple(offset for offset, _ in self.segment_offsets() if offset > 0)

    def segment_offsets(self) -> list[tuple[int, Segment]]:
        """Each segment with the character offset where its words begin in `text`, found in order."""
        found, at = [], 0
        for segment in self.segments:
            piece = segment.text.strip()
            offset = self.text.find(piece, at) if piece else -1
            if offset < 0:
                continue
            found.append((offset, segment))
            at = offset + len(piece)
        return found

    @classmethod
    def from_text(cls, text: str) -> Transcript:
        """A transcript for a typed debrief: one untimed segment (none if blank), duration 0."""
        text = text.strip()
        segments = [Segment(0.0, 0.0, text)] if text else []
        return cls(text=text, segments=segments, language="en", duration=0.0, model="typed")




def cuda_available(engine: str) -> bool:
    """Whether `engine` sees a CUDA GPU: through CTranslate2 for faster-whisper, torch for openai-whisper."""
    if engine == "faster":
        import ctranslate2

        return ctranslate2.get_cuda_device_count() > 0
    import_openai_whisper()
    import torch

    return torch.cuda.is_available()


def select_device(device: str = "auto", engine: str = DEFAULT_ENGINE) -> str:
    """The device to run on: "auto" is "cuda" when the engine sees a GPU, else "cpu".

    Raises:
      ModelError: "cuda" was asked for and the engine sees no GPU, or `device` is unknown.
    """
    if device not in DEVICES:
        raise ModelError(f"unknown device '{device}'; use one of: {', '.join(DEVICES)}")
    if device == "cpu":
        return "cpu"
    if cuda_available(engine):
        return "cuda"
    if device == "cuda":
        raise ModelError(f"--device cuda: the {engine} engine sees no CUDA GPU on this machine; use --device cpu")
    return "cpu"


def default_compute_type(engine: str, device: str) -> str:
    """float16 on a GPU for both engines; on the CPU int8 for faster-whisper, float32 for openai-whisper
    (torch has no half-precision or int8 path that helps Whisper on a CPU)."""
    if device == "cuda":
        return "float16"
    return "int8" if engine == "faster" else "float32"


class Transcriber:
    """Turns 16 kHz mono speech into a `Transcript`; the model is loaded on first use, once.

    `engine` is "faster" or "openai" (None: $DEBRIEF_ENGINE, else "faster"). `device` is "auto"
    (a CUDA GPU when the engine sees one, else the CPU), "cpu" or "cuda"; `compute_type` None
    means float16 on a GPU, and int8 (faster) or float32 (openai) on the CPU. Once loaded,
    `device` and `compute_type` say what is actually used, and `source` where the model came from.
    """

    def __init__(
        self,
        model: str = DEFAULT_MODEL,
        *,
        models: str | Path | None = None,
        engine: str | None = None,
        device: str = "auto",
        compute_type: str | None = None,
        beam_size: int = 5,
        cpu_threads: int = 0,
    ):
        self.model_name = model
        self.models = models
        self.engine = check_engine(engine) if engine else default_engine()
        self.device = device
        self.compute_type = compute_type
        self.beam_size = beam_size
        self.cpu_threads = cpu_threads
        self.source: str | None = None  # where the model came from, once loaded
        self._whisper = None

    def load(self):
        """Load the model (once) and return it: a faster-whisper WhisperModel or an openai-whisper Whisper.

        Raises:
          ModelError: the engine is not installed, the device is not there, or the model cannot
            be found, downloaded or loaded.
        """
        if self._whisper is not None:
            return self._whisper
        if self.engine == "openai":
            import_openai_whisper()  # before anything else, so a missing extra is the error shown
        device = select_device(self.device, self.engine)
        compute_type = self.compute_type or default_compute_type(self.engine, device)
        location, source = resolve_model(self.model_name, self.models, self.engine)
        started = time.perf_counter()
        try:
            whisper = self._load_on(device, compute_type, location, source)
        except _GpuUnusable as exc:
            # Seeing a GPU is not being able to use it: CTranslate2 finds the driver but may lack
            # the CUDA libraries it was built against, torch may have no kernels for the card, or
            # the card may be full. Asked for, that is the error; taken by "auto", the CPU will do.
            why = f"{self.engine}-whisper cannot run on the GPU ({one_line(exc.__cause__)})"
            if self.device == "cuda":
                raise ModelError(f"--device cuda: {why}; {GPU_HINTS[self.engine]}, or use --device cpu") from exc
            logger.warning("%s; transcribing on the CPU (--device cpu skips the GPU)", why)
            device = "cpu"
            compute_type = self.compute_type or default_compute_type(self.engine, device)
            whisper = self._load_on(device, compute_type, location, source)
        logger.info(
            "loaded Whisper model %s for %s-whisper on %s (%s) from %s (%s) in %.1f s",
            self.model_name, self.engine, device, compute_type, source, location, time.perf_counter() - started,
        )
        self._whisper, self.source = whisper, source
        self.device, self.compute_type = device, compute_type
        return whisper

    def transcribe(self, audio: np.ndarray) -> Transcript:
        """Transcribe mono float32 16 kHz samples (as `decode_audio` gives them).

        Silence and pauses are cut by voice activity detection before Whisper sees the
        audio, so no words are invented for them; audio with no speech gives a transcript
        with empty text and no segments (the caller decides whether that is an error).
        """
        audio = np.asarray(audio, dtype=np.float32)
        if audio.ndim != 1:
            raise ValueError(f"transcribe expects mono samples of shape (n,), got {audio.shape}")
        seconds = audio.shape[0] / SAMPLE_RATE
        if audio.size == 0:
            return Transcript("", [], "en", 0.0, self.model_name)

        whisper = self.load()
        started = time.perf_counter()
        # numpy's BLAS computes faster-whisper's mel spectrogram, and sums in an order that depends
        # on its thread count: the same recording gave a different word now and then on 1 and on 2
        # cores. One thread makes the features, and so the transcript, the same on every machine and
        # in every worker (it costs a few milliseconds a minute; Whisper's own threads are untouched).
        with threadpool_limits(limits=1, user_api="blas"):
            if self.engine == "faster":
                pieces, language, speech_seconds = self._transcribe_faster(whisper, audio)
            else:
                pieces, language, speech_seconds = self._transcribe_openai(whisper, audio)
        # Whisper's last timestamp can overshoot the end of the audio by a token or two.
        segments = [
            Segment(_clamp(start, seconds), _clamp(end, seconds), text.strip())
            for start, end, text in pieces
            if text.strip()
        ]
        logger.debug(
            "transcribed %.1f s of audio (%.1f s of speech) with %s-whisper in %.1f s: %d segments",
            seconds, speech_seconds, self.engine, time.perf_counter() - started, len(segments),
        )
        text = " ".join(segment.text for segment in segments).strip()
        return Transcript(text, segments, language, seconds, self.model_name)

    def _load_on(self, device: str, compute_type: str, location: str, source: str):
        """The model loaded on `device`; on a GPU, also run once, so that it is known to work there.

        Raises:
          _GpuUnusable: loading it on the GPU, or running it there, failed (the cause is chained).
          ModelError: the model cannot be found, downloaded or loaded.
        """
        try:
            if self.engine == "faster":
                whisper = self._load_faster(location, device, compute_type)
            else:
                whisper = self._load_openai(location, source, device, compute_type)
            if device == "cuda":
                _encode_silence(whisper, self.engine, compute_type)
            return whisper
        except ModelError:
            raise
        except Exception as exc:  # ctranslate2, torch, tokenizers and the hub raise many types
            if source in ("hub", "download"):
                raise ModelError(not_local(self.model_name, self.models, exc, self.engine)) from exc
            if device == "cuda":
                raise _GpuUnusable() from exc
            raise ModelError(
                f"{location}: cannot load Whisper model '{self.model_name}' ({one_line(exc)})"
            ) from exc

    # --- faster-whisper ------------------------------------------------------------------

    def _load_faster(self, location: str, device: str, compute_type: str):
        from faster_whisper import WhisperModel

        return WhisperModel(
            location,
            device=device,
            compute_type=compute_type,
            cpu_threads=self.cpu_threads,
            local_files_only=offline(),
        )

    def _transcribe_faster(self, whisper, audio: np.ndarray) -> tuple[list[tuple[float, float, str]], str, float]:
        # Temperature is left at faster-whisper's fallback ladder (0.0 ... 1.0): greedy
        # first, sampling only when a window fails the compression/log-prob checks.
        # condition_on_previous_text=False stops one bad window from looping into the next.
        pieces, info = whisper.transcribe(
            audio,
            language=None if whisper.model.is_multilingual else "en",
            beam_size=self.beam_size,
            vad_filter=True,
            condition_on_previous_text=False,
        )
        return [(piece.start, piece.end, piece.text) for piece in pieces], info.language, info.duration_after_vad

    # --- openai-whisper ------------------------------------------------------------------

    def _load_openai(self, location: str, source: str, device: str, compute_type: str):
        whisper = import_openai_whisper()
        if compute_type not in ("float32", "float16"):
            raise ModelError(f"the openai engine computes in float32 or float16, not {compute_type}")
        if self.cpu_threads:
            import torch

            torch.set_num_threads(self.cpu_threads)  # process-wide: torch has no per-model setting
        model = whisper.load_model(location, device=device)
        if source != "download":
            # A checkpoint loaded from a file gets no alignment heads (used for word timings);
            # set the official ones when the model's shape says which model it is.
            from dataclasses import asdict

            from debrief.whisper_models import official_name

            heads = whisper._ALIGNMENT_HEADS.get(official_name(asdict(model.dims)) or "")
            if heads:
                model.set_alignment_heads(heads)
        return model

    def _transcribe_openai(self, model, audio: np.ndarray) -> tuple[list[tuple[float, float, str]], str, float]:
        from faster_whisper.vad import SpeechTimestampsMap, VadOptions, collect_chunks, get_speech_timestamps

        whisper = import_openai_whisper()
        # openai-whisper has no voice activity detection: cut the silence with faster-whisper's
        # (Silero, the same options), so neither engine turns a pause into words and both see
        # the same speech.
        speech = get_speech_timestamps(audio, VadOptions())
        if not speech:
            return [], "en", 0.0
        speech_audio = np.concatenate(collect_chunks(audio, speech)[0])
        result = whisper.transcribe(
            model,
            speech_audio,
            language=None if model.is_multilingual else "en",
            temperature=_TEMPERATURES,
            beam_size=self.beam_size if self.beam_size > 1 else None,  # None is greedy; 1 would be a beam of one
            best_of=_BEST_OF,
            condition_on_previous_text=False,
            fp16=self.compute_type == "float16",
            verbose=None,  # no printing, no progress bar
        )
        # Times are in the speech-only audio; map them back to the recording's clock.
        clock = SpeechTimestampsMap(speech, SAMPLE_RATE)
        pieces = [
            (clock.get_original_time(piece["start"]), clock.get_original_time(piece["end"], is_end=True), piece["text"])
            for piece in result["segments"]
        ]
        return pieces, result.get("language") or "en", speech_audio.shape[0] / SAMPLE_RATE


class _GpuUnusable(Exception):
    """The model could not be loaded or run on the GPU; the reason is the chained exception."""


def _encode_silence(whisper, engine: str, compute_type: str) -> None:
    """Run the encoder once on 30 s of silence, on the device the model is on.

    This is where a GPU that is seen but cannot be used shows it (CTranslate2 loads cuBLAS at its
    first matrix product), and it pays part of the GPU's start-up before the first real transcription.
    """
    if engine == "faster":
        whisper.encode(np.zeros((whisper.model.n_mels, _ENCODER_FRAMES), dtype=np.float32))
        return
    import torch

    dtype = torch.float16 if compute_type == "float16" else torch.float32
    with torch.no_grad():
        whisper.embed_audio(torch.zeros(1, whisper.dims.n_mels, _ENCODER_FRAMES, dtype=dtype, device=whisper.device))


def _clamp(seconds: float, limit: float) -> float:
    return round(min(seconds, limit), 3)


