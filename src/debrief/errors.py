"""Errors a user can cause, each with the exit code the CLI documents, and `describe`, which
turns any failure into that one line and its code (the CLI, batch, the Ray workers and the web
desk all report failures through it).

Every error message is one line that names the file (or thing) and the problem.

Touches: nothing.
"""


class DebriefError(Exception):
    """Base class: an expected failure that the CLI reports in one line."""

    exit_code = 1


class UsageError(DebriefError):
    """A bad option value that the option parser could not catch (a date that is no date)."""

    exit_code = 2


class InputError(DebriefError):
    """A missing, unreadable, empty or undecodable input file."""

    exit_code = 3


class NoSpeechError(DebriefError):
    """The input decoded, but there is no speech (or no words) in it."""

    exit_code = 4


class PlaybookError(DebriefError):
    """The playbook or its patterns are missing or invalid."""

    exit_code = 5


class ModelError(DebriefError):
    """A speech model could not be found or loaded."""

    exit_code = 6


class OutputError(DebriefError):
    """The result could not be spoken or written (no audio device, disk full...)."""

    exit_code = 7


class EncoderError(DebriefError):
    """The sentence encoder's package is missing or its files cannot be read."""

    exit_code = 8


EXIT_CODES = {
    0: "success (including 'nothing to fix')",
    1: "unexpected internal error",
    2: "usage error (bad option or argument)",
    InputError.exit_code: "an input file is missing, unreadable, empty or not audio",
    NoSpeechError.exit_code: "an input has no speech in it (silence) or no words",
    PlaybookError.exit_code: "the playbook or its patterns are missing or invalid",
    ModelError.exit_code: "a speech model could not be found or loaded",
    OutputError.exit_code: "the result could not be spoken or written",
    EncoderError.exit_code: "the sentence encoder is not installed or its files cannot be read",
}


def describe(exc: BaseException) -> tuple[str, int]:
    """One line and an exit code for any failure: expected ones, a full disk, or a bug."""
    if isinstance(exc, DebriefError):
        return str(exc), exc.exit_code
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted", 130
    if isinstance(exc, OSError):  # a full disk or a closed pipe while writing output
        return f"{exc.filename or 'output'}: {exc.strerror or exc}", OutputError.exit_code
    return f"internal error: {type(exc).__name__}: {exc} (set DEBRIEF_DEBUG=1 for details)", 1
