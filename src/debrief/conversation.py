"""The debrief by voice: prompt, listen, transcribe while the rep talks, walk back, say the one fix.

`Companion` holds the conversation over takes from any block source (`recording.py`): the plain
debrief (one prompt, one answer) or the guided walk (`guided.py`: what is asked, and what happens
after each answer). Before the fix is said, a fix on a step nobody mentioned is asked about (rule
6, `asking.py`): the playbook's yes-or-no question, up to three times. Each answer is transcribed
piece by piece while the rep is still talking; what is said goes through `speech.Voice`.
Everything said is saved as one recording in the data folder, as it is said, and its result
(read by `Analyzer.read`, like any transcript) goes to the history.

Touches: the microphone or the replayed files, the speaker or the `--speak-to` folder, the recordings folder and the history store.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from debrief import asking, output
from debrief.audio import SAMPLE_RATE
from debrief.errors import NoSpeechError
from debrief.guided import (BEFORE, FINISH, NOTHING_HEARD, REASK, REASK_SAME, TELL_ME, WHERE, Move, after_answer,
                            fix_speech)
from debrief.pipeline import Analyzer, Result
from debrief.devices import microphone
from debrief.recording import INTERRUPTED, EnterKey, Limits, RecordingFile, Take, record, replay
from debrief.speech import Voice
from debrief.store import Store, file_hash, now
from debrief.transcription import Segment, Transcript
from debrief.voice_activity import SpeechDetector
from debrief.walk import DONE, Evidence, diagnose

log = logging.getLogger(__name__)


@dataclass
class Turn:
    """One prompt, what the rep said to it, how the take stopped, and what the walk did next."""

    prompt: str
    answer: str
    seconds: float
    stopped_by: str
    move: str = ""


@dataclass
class Debrief:
    """A finished conversation: the result (as `analyze` gives it), the turns, where it is saved."""

    result: Result
    turns: list[Turn]
    recording: Path
    hash: str | None
    timings: dict[str, float] = field(default_factory=dict)  # seconds from the end of the last answer


# --------------------------------------------------------------------------- the rules (pure)


# --------------------------------------------------------------------------- voice out


# --------------------------------------------------------------------------- transcribing as it comes


class _Pieces:
    """Transcribes a take's pieces in order on one worker thread while the rep is still talking."""

    def __init__(self, analyzer: Analyzer) -> None:
        self._transcriber = analyzer.transcriber
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="debrief-transcribe")
        self._pieces: list[tuple[int, Future]] = []
        self.end = 0  # where the next piece starts, in samples into the take
        self.seconds = 0.0  # time spent transcribing

    def add(self, audio: np.ndarray, start: int) -> None:
        self._pieces.append((start, self._pool.submit(self._transcribe, audio)))
        self.end = start + len(audio)

    def _transcribe(self, audio: np.ndarray) -> tuple[Transcript, float]:
        started = time.perf_counter()
        return self._transcriber.transcribe(audio), time.perf_counter() - started

    def finish(self, take: Take) -> list[Segment]:
        """The take's segments, timed from the start of the recording file."""
        try:
            spoke_since = take.speech_end is not None and take.speech_end * SAMPLE_RATE > self.end
            if spoke_since and len(take.audio) > self.end:
                self.add(take.audio[self.end:], self.end)
            segments = []
            for start, future in self._pieces:
                transcript, seconds = future.result()
                self.seconds += seconds
                at = take.offset + start / SAMPLE_RATE
                segments += [Segment(round(at + s.start, 3), round(at + s.end, 3), s.text)
                             for s in transcript.segments]
            return segments
        finally:
            self._pool.shutdown(wait=False, cancel_futures=True)


# --------------------------------------------------------------------------- the conversation


Takes = Callable[[], "Iterator[np.ndarray] | None"]
"""Gives the block source for the next answer (a microphone opened afresh, the next replayed
file), or None when there are no more answers to hear."""


def replayed(audios: list[np.ndarray], *, pace: bool = True) -> Takes:
    """Takes from recordings, one per answer, fed through the microphone's path (`recording.replay`)."""
    remaining = iter(audios)

    def takes() -> Iterator[np.ndarray] | None:
        audio = next(remaining, None)
        return None if audio is None else replay(audio, pace=pace)

    return takes


def from_microphone(device: int | str | None = None) -> Takes:
    """Takes from the microphone, opened afresh for each answer: it hears the rep, not the prompt."""
    return lambda: microphone(device)


class Companion:
    """Talks a rep through a debrief by voice; the models are loaded once, before the first prompt."""

    def __init__(self, analyzer: Analyzer, voice: Voice, limits: Limits = Limits(), *,
                 enter: EnterKey | None = None, max_turns: int = 8,
                 echo: Callable[[str, str], None] | None = None) -> None:
        self.analyzer, self.voice, self.limits = analyzer, voice, limits
        self.enter, self.max_turns = enter, max_turns
        self.echo = echo or (lambda who, text: None)
        self._transcribe_seconds = 0.0

    def warm_up(self) -> None:
        """Load Whisper, the voice-activity model and the voice now, not after the rep stops talking."""
        self.analyzer.transcriber.load()
        SpeechDetector()
        self.voice.warm_up()

    def run(self, takes: Takes, *, guided: bool = False, rep: str | None = None,
            deal: str | None = None) -> Debrief:
        """Hold the conversation, save what was said and its result, and say the one step to fix.

        Raises:
          NoSpeechError: nothing was said (the recording, if any, is kept and in the history).
          DeviceError: the microphone failed (what was recorded so far is kept).
        """
        recording = RecordingFile.create()
        recorded_at = now()
        self._transcribe_seconds = 0.0
        turns: list[Turn] = []
        try:
            with recording:
                answers, segments, stopped_at = self._converse(takes, recording, turns, guided)
                checks, stopped_at = self._check(takes, recording, turns, answers, segments, stopped_at)
            waited = time.perf_counter() - stopped_at
            source = str(recording.path)
            result = self._result(answers, segments, recording.seconds, source, checks)
            result.timings["after_speech"] = time.perf_counter() - stopped_at  # what the rep waits
        except BaseException as exc:
            try:
                self._keep(recording, rep, deal, recorded_at, exc)
                if isinstance(exc, NoSpeechError):
                    self._say(NOTHING_HEARD, "nothing")
            except Exception as also:  # noqa: BLE001 - the first failure is the one to report
                log.warning("while keeping the recording after %r: %s", exc, also)
            raise
        digest = self._keep(recording, rep, deal, recorded_at, result=result, turns=turns)
        self._say(fix_speech(result.diagnosis), "fix")
        timings = {"wait_for_transcript": waited, "to_diagnosis": result.timings["after_speech"]}
        if self.voice.ready_at is not None:
            timings["to_speech"] = self.voice.ready_at - stopped_at
        return Debrief(result, turns, recording.path, digest, timings)

    def _converse(self, takes: Takes, recording: RecordingFile, turns: list[Turn],
                  guided: bool) -> tuple[list[str], list[Segment], float]:
        answers: list[str] = []
        segments: list[Segment] = []
        prompt = WHERE if guided else TELL_ME
        question, reasked = prompt, False
        stopped_at = time.perf_counter()
        while True:
            blocks = takes()
            if blocks is None:
                if turns:
                    turns[-1].move = "no more recorded answers"
                break
            self._say(prompt, "reask" if reasked else "prompt")
            take, said = self._hear(blocks, recording)
            stopped_at = take.stopped_at
            segments += said
            answer = " ".join(s.text for s in said).strip()
            self.echo("you", answer or f"(nothing heard: {take.reason})")
            turns.append(Turn(prompt, answer, round(take.seconds, 2), take.reason))
            if answer:
                answers.append(answer)
            if not guided:
                break
            move = after_answer(self.analyzer, answers, answer, reasked=reasked, turns=len(turns),
                                max_turns=self.max_turns)
            if take.reason == INTERRUPTED:
                move = Move(FINISH, "stopped with Ctrl-C")
            turns[-1].move = f"{move.action}: {move.reason}"
            log.info("turn %d: %s", len(turns), turns[-1].move)
            if move.action == FINISH:
                break
            if move.action == REASK_SAME:
                prompt, reasked = REASK.get(question, REASK[BEFORE]), True
            else:
                question = prompt = BEFORE
                reasked = False
        return answers, segments, stopped_at

    def _check(self, takes: Takes, recording: RecordingFile, turns: list[Turn], answers: list[str],
               segments: list[Segment], stopped_at: float) -> tuple[tuple[Evidence, ...], float]:
        """Ask before blaming (rule 6): while the fix is a step nobody mentioned, ask the playbook's
        question about it, at most `asking.MAX_CHECKS` times. Done: the walk goes on to the next
        candidate; missed: that is the fix; no answer: the fix is given as unconfirmed."""
        checks: list[Evidence] = []
        classifier, playbook = self.analyzer.classifier, self.analyzer.playbook
        for _ in range(asking.MAX_CHECKS):
            text = "\n".join(answers)
            if not text.strip():
                break
            diagnosis = diagnose(playbook, asking.with_checks(classifier.classify(text), tuple(checks)))
            if diagnosis.fix is None or diagnosis.confirmed:
                break
            blocks = takes()
            if blocks is None:
                break
            step = diagnosis.fix.step
            self._say(step.check, "check")
            take, said = self._hear(blocks, recording)
            stopped_at = take.stopped_at
            segments += said
            answer = " ".join(s.text for s in said).strip()
            self.echo("you", answer or f"(nothing heard: {take.reason})")
            verdict = asking.read_check(answer, step.id, classifier.classify(answer)) if answer else None
            turns.append(Turn(step.check, answer, round(take.seconds, 2), take.reason,
                              f"check {step.id}: {verdict or 'no answer'}"))
            if answer:
                start = len(text) + 1
                answers.append(answer)
                if verdict is not None:
                    checks.append(Evidence(step.id, verdict, answer, start, start + len(answer)))
            if verdict != DONE or take.reason == INTERRUPTED:
                break
        return tuple(checks), stopped_at

    def _hear(self, blocks: Iterator[np.ndarray], recording: RecordingFile) -> tuple[Take, list[Segment]]:
        """Record one answer and transcribe it, piece by piece as the rep talks."""
        pieces = _Pieces(self.analyzer)
        detector = SpeechDetector(self.limits.trailing_silence)
        try:
            take = record(blocks, recording, detector, self.limits, enter=self.enter, on_cut=pieces.add)
            said = pieces.finish(take)
        finally:
            self._transcribe_seconds += pieces.seconds
        return take, said

    def _result(self, answers: list[str], segments: list[Segment], seconds: float, source: str,
                checks: tuple[Evidence, ...] = ()) -> Result:
        # Each answer on its own line: the classifier reads a new line as a new sentence.
        text = "\n".join(answers)
        if not text.strip():
            raise NoSpeechError(f"{source}: no speech heard in {seconds:.1f} s; the recording is kept")
        transcript = Transcript(text, segments, "en", seconds, self.analyzer.transcriber.model_name)
        result = self.analyzer.read(transcript, source, checks)
        result.timings = {"decode": 0.0, "transcribe": self._transcribe_seconds, **result.timings}
        return result

    def _say(self, text: str, kind: str) -> None:
        self.echo("debrief", text)
        self.voice.say(text, kind)

    def _keep(self, recording: RecordingFile, rep: str | None, deal: str | None, recorded_at: str,
              error: BaseException | None = None, *, result: Result | None = None,
              turns: list[Turn] | None = None) -> str | None:
        """Put the recording and its result (or its error) in the history; drop an empty file."""
        recording.close()
        if not recording.frames:
            recording.path.unlink(missing_ok=True)
            return None
        digest = file_hash(recording.path)
        with Store() as store:
            store.add_recording(digest, str(recording.path), rep=rep, deal=deal, recorded_at=recorded_at,
                                duration=round(recording.seconds, 2))
            if result is not None:
                store.save_result(digest, to_dict(result, turns or []))
            elif error is not None:
                interrupted = isinstance(error, KeyboardInterrupt)
                message = "interrupted" if interrupted else (str(error) or type(error).__name__)
                code = 130 if interrupted else getattr(error, "exit_code", 1)
                store.save_result(digest, output.error_dict(str(recording.path), message, code))
        return digest


def to_dict(result: Result, turns: list[Turn]) -> dict:
    """The `analyze --json` object, plus the conversation that produced it."""
    return {**output.to_dict(result), "conversation": [
        {"prompt": t.prompt, "answer": t.answer, "seconds": t.seconds, "stopped_by": t.stopped_by,
         "next": t.move} for t in turns]}
