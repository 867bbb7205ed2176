import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# Real speech with reference transcripts (sources and licences in its README).
SPEECH = REPO / "tests" / "data" / "audio"

# Nothing in the tests may reach the network: the bundled models must be enough.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
# The learned reader's derived files (trained head, example vectors): shared by the whole run and
# by later runs on this checkout, so the reader is trained once, not in every test.
os.environ.setdefault("DEBRIEF_CACHE", str(REPO / ".cache" / "tests"))


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path, monkeypatch):
    """Keep every test's saved data in its own temporary folder."""
    monkeypatch.setenv("DEBRIEF_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("DEBRIEF_MODELS", raising=False)


@pytest.fixture(scope="session")
def playbook():
    from debrief.playbook import load_playbook

    return load_playbook(REPO / "models" / "baseline")


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    """List what this machine could not run, by reason; in CI (CI=true) any skip fails the run."""
    skipped = terminalreporter.stats.get("skipped", [])
    if not skipped:
        return
    reasons: dict[str, int] = {}
    for report in skipped:
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        reason = reason.removeprefix("Skipped: ")
        reasons[reason] = reasons.get(reason, 0) + 1
    terminalreporter.section("not run on this machine")
    for reason, count in sorted(reasons.items(), key=lambda item: -item[1]):
        terminalreporter.write_line(f"{count:>4}  {reason}")
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        terminalreporter.write_line(f"CI=true: {len(skipped)} skipped test(s) fail the run; CI must prove every layer")


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session, exitstatus):
    if os.environ.get("CI", "").lower() in ("1", "true", "yes") and exitstatus == 0:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None and reporter.stats.get("skipped"):
            session.exitstatus = 1
