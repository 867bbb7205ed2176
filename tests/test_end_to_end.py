"""From a recorded debrief to the fix: the real Whisper model on the rendered samples.

The fix from the audio must equal the fix from the text it was rendered from, and the label.
"""

import json

import pytest

from conftest import REPO

SAMPLES = REPO / "samples"
LABELS = json.loads((SAMPLES / "labels.json").read_text())


@pytest.fixture(scope="module")
def analyzer(playbook):
    from debrief.pipeline import Analyzer

    return Analyzer(playbook)


@pytest.mark.slow
@pytest.mark.parametrize("stem", sorted(LABELS))
def test_fix_from_audio_equals_fix_from_text(analyzer, stem):
    from_audio = analyzer.analyze(SAMPLES / f"{stem}.wav")
    from_text = analyzer.analyze(SAMPLES / f"{stem}.txt")
    fix = lambda r: r.diagnosis.fix.step.id if r.diagnosis.fix else None  # noqa: E731
    assert fix(from_audio) == fix(from_text) == LABELS[stem]["fix"]
    assert from_audio.diagnosis.outcome == from_text.diagnosis.outcome == LABELS[stem]["outcome"]
    assert from_audio.transcript.duration > 20 and from_audio.transcript.segments


def test_every_sample_has_its_audio():
    for stem in LABELS:
        assert (SAMPLES / f"{stem}.txt").is_file() and (SAMPLES / f"{stem}.wav").is_file()
