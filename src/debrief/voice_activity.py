"""Voice activity: when a rep starts and stops talking, with the Silero VAD model that
faster-whisper ships (no download). `SpeechDetector` judges blocks of 16 kHz samples as they
come and says when the trailing silence after speech is long enough to end an answer. Pure
computation on samples: no devices, no files.
"""

from __future__ import annotations
import logging
import numpy as np
from debrief.audio import SAMPLE_RATE

log = logging.getLogger(__name__)

WINDOW = 512  # samples the Silero model judges at once (32 ms at 16 kHz)
CONTEXT = 64  # samples of the previous window the model sees with each window


class SpeechDetector:
    """Streaming voice-activity detection: has speech started, where are the pauses, has it ended.

    Silero (the v6 model faster-whisper ships) judges each 32 ms window. Its LSTM state and the 64
    samples of context are carried from block to block, so blocks of any size give exactly the
    probabilities of faster-whisper's whole-file pass. As in faster-whisper, a window at or above
    `threshold` is speech, silence starts at the first window below `threshold - 0.15` and only a
    speech window ends it: a breath or a soft consonant does not restart the count.

    It also marks `cuts`: places where what was said since the last cut can be transcribed on its
    own while the rep goes on talking. A cut falls in a pause after speech: a short one (`pause`)
    once the piece is `piece` seconds long, a longer one (`long_pause`) whatever its length, so the
    last words are usually transcribed before the trailing silence has run out.
    """

    def __init__(self, trailing_silence: float = 2.5, *, threshold: float = 0.5, min_speech: float = 0.25,
                 pause: float = 0.3, long_pause: float = 1.0, piece: float = 4.0) -> None:
        from faster_whisper.vad import get_vad_model

        self._session = get_vad_model().session
        self.threshold = threshold
        self.neg_threshold = max(threshold - 0.15, 0.01)
        self.trailing = int(trailing_silence * SAMPLE_RATE)
        self.min_speech = int(min_speech * SAMPLE_RATE)  # a click or a cough does not start a take
        self.pause, self.long_pause = int(pause * SAMPLE_RATE), int(long_pause * SAMPLE_RATE)
        self.piece = int(piece * SAMPLE_RATE)
        self._h = np.zeros((1, 1, 128), np.float32)
        self._c = np.zeros((1, 1, 128), np.float32)
        self._context = np.zeros(CONTEXT, np.float32)
        self._pending = np.zeros(0, np.float32)
        self._silence_from: int | None = None
        self.position = 0  # samples judged so far
        self.speech_samples = 0
        self.speech_end: int | None = None  # where the last speech window ended, in samples
        self.cuts: list[int] = []  # positions (in samples) where a piece ends

    @property
    def started(self) -> bool:
        return self.speech_samples >= self.min_speech

    @property
    def silence(self) -> int:
        """Samples of silence since the last speech (0 while speaking or before any speech)."""
        return 0 if self._silence_from is None else self.position - self._silence_from

    @property
    def ended(self) -> bool:
        return self.started and self.silence >= self.trailing

    def feed(self, block: np.ndarray) -> None:
        """Judge the whole windows in `block` (plus what was left over from the last one)."""
        audio = np.concatenate([self._pending, np.asarray(block, np.float32)])
        whole = len(audio) // WINDOW * WINDOW
        self._pending = audio[whole:]
        if whole:
            for probability in self._probabilities(audio[:whole]):
                self._step(float(probability))

    def _probabilities(self, audio: np.ndarray) -> np.ndarray:
        windows = audio.reshape(-1, WINDOW)
        context = np.vstack([self._context[None], windows[:-1, -CONTEXT:]])
        out, self._h, self._c = self._session.run(
            None, {"input": np.concatenate([context, windows], axis=1), "h": self._h, "c": self._c})
        self._context = windows[-1, -CONTEXT:].copy()
        return out.reshape(-1)

    def _step(self, probability: float) -> None:
        self.position += WINDOW
        if probability >= self.threshold:
            self.speech_samples += WINDOW
            self.speech_end = self.position
            self._silence_from = None
        elif probability < self.neg_threshold and self.speech_end is not None and self._silence_from is None:
            self._silence_from = self.position - WINDOW
        last_cut = self.cuts[-1] if self.cuts else 0
        if self.started and self._silence_from is not None and self.speech_end > last_cut:
            long_enough = self._silence_from - last_cut >= self.piece
            if self.silence >= (self.pause if long_enough else self.long_pause):
                self.cuts.append(self.position)
