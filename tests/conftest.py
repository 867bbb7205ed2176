import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_AUDIO = REPO.parent / "shared" / "audio"

# Nothing in the tests may reach the network: the bundled models must be enough.
os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path, monkeypatch):
    """Keep every test's saved data in its own temporary folder."""
    monkeypatch.setenv("DEBRIEF_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("DEBRIEF_MODELS", raising=False)


@pytest.fixture(scope="session")
def playbook():
    from debrief.playbook import load_playbook

    return load_playbook(REPO / "models" / "baseline")
