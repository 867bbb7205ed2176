#!/usr/bin/env python3
"""Render every samples/*.txt into samples/<stem>.wav (16 kHz mono 16-bit) with the piper joe voice.

A txt whose lines start with "REP:" / "PROSPECT:" is a recorded-call style sample: the labels
are not spoken, each turn is rendered on its own with a short pause between turns, and the
prospect sounds different (another speaker if the voice has several, else a slightly slower
pace). Any other txt is spoken as it is. Lines without a label continue the previous turn.

A wav newer than its txt is left alone unless --force. Rendering is reproducible: piper's
voice samples random noise, so the voice is reloaded with a fixed onnxruntime seed for each
file and a --force re-render gives the same audio (on the same onnxruntime and CPU).

    python scripts/render_samples.py [--dir samples] [--force] [--rate 16000]
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

import numpy as np  # noqa: E402

from debrief import speech  # noqa: E402
from debrief.errors import DebriefError  # noqa: E402

SEED = 20240601
TURN_PAUSE_S = 0.45
LABEL = re.compile(r"^\s*(REP|PROSPECT)\s*:\s*(.*)$", re.IGNORECASE)
ROLE_STYLE = {  # (speaker index if the voice has several, length_scale otherwise)
    "REP": (0, 1.0),
    "PROSPECT": (1, 1.12),
}


def parse_turns(text: str) -> list[tuple[str | None, str]]:
    """[(role or None, words)]: one entry per labelled turn, or one unlabelled entry."""
    turns: list[tuple[str | None, str]] = []
    for line in text.splitlines():
        if not line.strip():
            continue
        match = LABEL.match(line)
        if match:
            turns.append((match.group(1).upper(), match.group(2).strip()))
        elif turns:
            role, words = turns[-1]
            turns[-1] = (role, f"{words} {line.strip()}".strip())
        else:
            turns.append((None, line.strip()))
    if not any(role for role, _ in turns):  # plain text: speak it as one piece
        return [(None, " ".join(words for _, words in turns))] if turns else []
    return [(role, words) for role, words in turns if words]


def render_turn(role: str | None, words: str) -> tuple[np.ndarray, int]:
    speaker, length_scale = ROLE_STYLE.get(role or "REP", (0, 1.0))
    if speech.piper_voice().config.num_speakers > 1:
        return speech.synthesize_piper(words, speaker_id=speaker)
    return speech.synthesize_piper(words, length_scale=length_scale)


def reseed_voice(seed: int = SEED) -> None:
    """Reload the piper voice with a fixed seed: its noise generators are seeded at load."""
    import onnxruntime

    onnxruntime.set_seed(seed)
    speech.piper_voice.cache_clear()
    speech.piper_voice()


def render_text(text: str) -> tuple[np.ndarray, int]:
    turns = parse_turns(text)
    if not turns:
        raise DebriefError("nothing to say (the file is empty)")
    reseed_voice()
    pieces: list[np.ndarray] = []
    sample_rate = 0
    for role, words in turns:
        audio, sample_rate = render_turn(role, words)
        if pieces:
            pieces.append(speech.silence(TURN_PAUSE_S, sample_rate))
        pieces.append(audio)
    return np.concatenate(pieces), sample_rate


def is_fresh(txt: Path, wav: Path) -> bool:
    return wav.is_file() and wav.stat().st_mtime >= txt.stat().st_mtime


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, default=REPO / "samples", help="folder of *.txt (default: samples/)")
    parser.add_argument("--force", action="store_true", help="re-render wavs that are up to date")
    parser.add_argument("--rate", type=int, default=16000, help="output sample rate (default 16000)")
    args = parser.parse_args(argv)

    texts = sorted(args.dir.glob("*.txt"))
    if not texts:
        print(f"no *.txt in {args.dir}", file=sys.stderr)
        return 3
    rendered = 0
    for txt in texts:
        wav = txt.with_suffix(".wav")
        if not args.force and is_fresh(txt, wav):
            continue
        try:
            audio, sample_rate = render_text(txt.read_text(encoding="utf-8"))
            speech.write_wav(wav, audio, sample_rate, rate=args.rate)
        except (DebriefError, OSError, UnicodeDecodeError) as error:
            message = " ".join(str(error).split())
            print(f"error: {txt}: {message}", file=sys.stderr)
            return getattr(error, "exit_code", 1)
        seconds = len(audio) / sample_rate
        print(f"{wav}  {seconds:.1f} s  {args.rate} Hz mono  {wav.stat().st_size // 1024} KiB")
        rendered += 1
    if not rendered:
        print(f"all {len(texts)} wav files in {args.dir} are up to date (--force to re-render)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
