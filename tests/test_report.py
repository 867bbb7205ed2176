"""`debrief report`: per rep, from a history whose answers are known.

The history (oldest first per rep):
  dana  impact, impact, budget, impact, won    -> most often second.impact; impact stopped after 10-22
  kim   commit, issues, issues                 -> second.issues came back: still recurring
  lee   commit, decision (+ one failed file)   -> a tie goes to the earlier step, third.decision
  ana   decision, won, won                     -> who decides stopped: two calls since without it
  sam   contact                                -> too early to tell
  pat   won, "hello" (not enough to coach)     -> nothing coached; the hello counts in no statistic
One call since a coached step is too few to say it stopped (dana, lee).
"""

import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conftest import REPO
from debrief.cli import app
from debrief.report import build_report, to_html
from debrief.store import Store

ARTIFACTS = REPO / "test-artifacts"
HISTORY = [
    ("dana", "2026-10-01", "second.impact"), ("dana", "2026-10-08", "second.impact"),
    ("dana", "2026-10-15", "third.budget"), ("dana", "2026-10-22", "second.impact"), ("dana", "2026-10-29", None),
    ("kim", "2026-10-01", "home.commit"), ("kim", "2026-10-05", "second.issues"), ("kim", "2026-10-12", "second.issues"),
    ("lee", "2026-10-01", "home.commit"), ("lee", "2026-10-09", "third.decision"),
    ("ana", "2026-10-02", "third.decision"), ("ana", "2026-10-09", None), ("ana", "2026-10-16", None),
    ("sam", "2026-11-01", "first.contact"),
    ("pat", "2026-11-02", None), ("pat", "2026-11-03", "not enough"),
]


def result(source, fix):
    if fix == "not enough":
        return {"source": source, "transcript": "hello", "outcome": "unknown", "endpoint": None,
                "status": "not_enough", "fix": None}
    return {"source": source, "transcript": "...", "outcome": "won" if fix is None else "stalled",
            "endpoint": fix, "fix": None if fix is None else {"step": fix, "base": fix.split(".")[0]}}


@pytest.fixture
def history():
    """The known history, in the test's own DEBRIEF_HOME."""
    with Store() as store:
        for index, (rep, date, fix) in enumerate(HISTORY):
            store.add_recording(f"h{index}", f"{rep}/{index}.wav", rep=rep, recorded_at=date)
            store.save_result(f"h{index}", result(f"{rep}/{index}.wav", fix))
        store.add_recording("bad", "lee/bad.wav", rep="lee", recorded_at="2026-10-03")
        store.save_result("bad", {"source": "lee/bad.wav", "error": "lee/bad.wav: not audio", "exit_code": 3})
        yield store


@pytest.fixture
def reports(history, playbook):
    return {r.rep: r for r in build_report(history.history(), playbook)}


def test_the_step_to_fix_most_often_and_the_counts_per_base(reports):
    dana = reports["dana"]
    assert (len(dana.calls), dana.top, dana.fixes[dana.top]) == (5, "second.impact", 3)
    assert dict(dana.bases) == {"second": 3, "third": 1, "none": 1}


def test_a_tie_goes_to_the_earlier_step(reports):
    lee = reports["lee"]
    assert lee.top == "third.decision" and lee.failed == 1


@pytest.mark.parametrize("rep, coached, on, verdict, words", [
    ("dana", "second.impact", "2026-10-22", "too early", "too early: 1 call since"),
    ("kim", "second.issues", "2026-10-05", "recurring", "still recurring: back in 1 of 1 call since"),
    ("lee", "home.commit", "2026-10-01", "too early", "too early: 1 call since"),
    ("ana", "third.decision", "2026-10-02", "stopped", "stopped: not back in 2 calls since"),
    ("sam", "first.contact", "2026-11-01", "too early", "too early: no calls since"),
    ("pat", None, None, "nothing coached", "nothing to fix yet"),
])
def test_whether_the_last_coached_step_stopped_recurring(reports, rep, coached, on, verdict, words):
    report = reports[rep]
    assert (report.last_coached, report.coached_on, report.verdict, report.since_text) == (coached, on, verdict, words)


def test_the_terminal_table(history):
    result = CliRunner().invoke(app, ["report"])
    assert result.exit_code == 0, result.output
    lines = {line.split()[0]: " ".join(line.split()) for line in result.stdout.splitlines()[2:]}
    assert lines["dana"] == ("dana 5 0 0 what the problem costs them (3) 0 3 1 0 1 what the problem costs them "
                             "(2026-10-22) too early: 1 call since")
    assert lines["kim"].endswith("what their problem is (2026-10-05) still recurring: back in 1 of 1 call since")
    assert lines["lee"].startswith("lee 2 1 0 who decides (1)")
    assert lines["pat"].startswith("pat 1 0 1 - 0 0 0 0 1 -")
    assert sorted(lines) == ["ana", "dana", "kim", "lee", "pat", "sam"]
    assert "second.impact" not in result.stdout


def test_one_rep_since_a_date(history):
    result = CliRunner().invoke(app, ["report", "--rep", "dana", "--since", "2026-10-10"])
    rows = [line for line in result.stdout.splitlines()[2:] if line.strip()]
    assert len(rows) == 1 and " ".join(rows[0].split()).startswith("dana 3 0 0 what the problem costs them (1)")


def test_an_empty_history_says_what_to_do():
    result = CliRunner().invoke(app, ["report"])
    assert result.exit_code == 0
    assert result.stderr.strip() == "debrief: no calls in the history; add some with `debrief batch DIR`"


def test_a_bad_date_is_a_usage_error():
    result = CliRunner().invoke(app, ["report", "--since", "last week"])
    assert result.exit_code == 2 and "not a date (use YYYY-MM-DD)" in result.stderr


def test_names_are_escaped_in_the_page(playbook):
    from debrief.store import Entry

    entry = Entry("h", "x.wav", "<script>alert(1)</script>", None, "2026-10-01", 1.0, "done", "stalled",
                  "third.budget", "third.budget", None, {})
    page = to_html(build_report([entry], playbook), playbook)
    assert "<script>" not in page and "&lt;script&gt;" in page


def _browser():
    """Headless Chromium through the system's chromedriver (nothing downloaded), or a skip."""
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    binary = next(filter(None, map(shutil.which, ("chromium", "chromium-browser", "google-chrome"))), None)
    driver = shutil.which("chromedriver")
    if not binary or not driver:
        pytest.skip("needs chromium and chromedriver (apt-get install chromium chromium-driver)")
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--no-first-run", "--window-size=1100,1600"):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(driver), options=options)


@pytest.mark.slow
def test_the_html_chart_opens_in_a_browser(history, tmp_path):
    page = tmp_path / "report.html"
    result = CliRunner().invoke(app, ["report", "--html", str(page)])
    assert result.exit_code == 0 and f"chart: {page}" in result.stdout
    browser = _browser()
    try:
        browser.get(page.as_uri())
        charts = browser.execute_script("""
            return [...document.querySelectorAll('section.rep')].map(section => ({
              rep: section.querySelector('h2').textContent,
              bars: [...section.querySelectorAll('svg.chart g.step')].map(g => ({
                step: g.dataset.step, count: +g.dataset.count,
                width: g.querySelector('rect.bar').getBoundingClientRect().width}))}))""")
        ARTIFACTS.mkdir(exist_ok=True)
        assert browser.save_screenshot(str(ARTIFACTS / "report.png"))
    finally:
        browser.quit()
    assert [chart["rep"] for chart in charts] == ["ana", "dana", "kim", "lee", "pat", "sam"]
    dana = {bar["step"]: bar for bar in charts[1]["bars"]}
    assert len(dana) == 13  # a bar for every step of the playbook
    assert dana["second.impact"]["width"] == pytest.approx(3 * dana["third.budget"]["width"], abs=1)
    assert dana["second.impact"]["width"] > 300 and dana["home.commit"]["width"] == 0
    assert Path(ARTIFACTS / "report.png").stat().st_size > 10_000
