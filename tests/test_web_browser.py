"""End to end in Debian's headless Chromium: upload a recorded debrief, wait, find the step to fix.

Driven by Selenium with the system chromedriver (never a downloaded browser). Screenshots of the
result, at desktop and phone width, go to `test-artifacts/`.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install selenium)")

from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support import expected_conditions as until  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

from debrief import paths  # noqa: E402
from debrief.web.app import Settings, create_app  # noqa: E402

from live_server import serving  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
ARTIFACTS = REPO / "test-artifacts"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER),
                       reason="Chromium and chromedriver are not installed (apt-get install chromium chromium-driver)"),
]


@pytest.fixture
def browser(tmp_path, monkeypatch):
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    # Both paths given, so Selenium Manager never looks for (or downloads) a browser or driver.
    monkeypatch.setenv("SE_OFFLINE", "true")
    options = Options()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--no-first-run", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", f"--user-data-dir={tmp_path / 'chromium'}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


def test_upload_a_recording_and_find_the_step_to_fix(browser):
    from debrief.pipeline import Analyzer

    analyzer = Analyzer(REPO / "models" / "baseline", beam_size=1)
    app = create_app(analyzer, Settings(data=paths.data_dir(), poll_seconds=0.2))
    ARTIFACTS.mkdir(exist_ok=True)
    with serving(app) as url:
        browser.set_window_size(1280, 1000)
        browser.get(url + "/")
        assert browser.title.startswith("Upload")
        browser.find_element(By.ID, "files").send_keys(str(REPO / "samples" / "stalled-after-demo.wav"))
        # Keyboard only from here: type the rep, Tab to the deal, Enter submits the form.
        rep = browser.find_element(By.ID, "rep")
        rep.send_keys("dana")
        browser.switch_to.active_element.send_keys(Keys.TAB, "acme", Keys.ENTER)

        # The script uploads, goes to the result page, polls, and reloads when it is done.
        fix = WebDriverWait(browser, 120, poll_frequency=0.5).until(
            until.presence_of_element_located((By.ID, "fix-step")))
        assert fix.text == "second.impact"
        section = browser.find_element(By.ID, "fix").text
        assert "what the problem costs them (second base)" in section
        assert "What is that costing you, in money or in time?" in section
        marks = browser.find_elements(By.CSS_SELECTOR, "#transcript mark.ev-missed")
        assert any("costing" in m.text for m in marks)  # cut where Whisper starts "them, not in hours"
        assert "acme" in browser.find_element(By.CSS_SELECTOR, ".meta").text
        browser.save_screenshot(str(ARTIFACTS / "web-result.png"))
        browser.find_element(By.ID, "transcript").screenshot(str(ARTIFACTS / "web-transcript.png"))
        assert "[second.impact" not in browser.find_element(By.ID, "transcript").text  # colours, no tags

        # A click on a sentence plays the recording from when it is said.
        missed = next(m for m in marks if "costing" in m.text)
        said_at = float(missed.get_attribute("data-t"))
        assert said_at > 5
        browser.execute_script("document.getElementById('recording').muted = true")
        missed.click()
        WebDriverWait(browser, 20).until(lambda b: b.execute_script(
            "const a = document.getElementById('recording'); return !a.paused && a.currentTime >= arguments[0] - 0.5",
            said_at))

        # Readable on a phone: nothing wider than the screen.
        browser.set_window_size(390, 844)
        time.sleep(0.3)
        assert browser.execute_script("return document.documentElement.scrollWidth <= window.innerWidth")
        browser.save_screenshot(str(ARTIFACTS / "web-result-phone.png"))

        browser.set_window_size(1280, 1000)
        browser.get(url + "/reps/dana")
        assert browser.find_element(By.ID, "top-step").text == "second.impact"
        browser.save_screenshot(str(ARTIFACTS / "web-rep.png"))
        browser.get(url + "/")
        recent = browser.find_element(By.ID, "recent-title").find_element(By.XPATH, "..").text
        assert "what the problem costs them" in recent and "stalled-after-demo.wav" in recent
        browser.save_screenshot(str(ARTIFACTS / "web-upload.png"))
        browser.find_element(By.LINK_TEXT, "Team").click()
        assert browser.title.startswith("Team")
        bars = browser.find_elements(By.CSS_SELECTOR, ".team-chart rect.fixes")
        assert [(b.get_attribute("data-base"), b.get_attribute("data-count")) for b in bars] == [("second", "1")]
        assert "what the problem costs them (1)" in browser.find_element(By.ID, "team").text
        browser.save_screenshot(str(ARTIFACTS / "web-team.png"))
        for page, title in (("Calls", "Calls"), ("Reps", "Reps"), ("Upload", "Upload")):  # on every page
            browser.find_element(By.LINK_TEXT, page).click()
            assert browser.title.startswith(title)
        assert "stalled-after-demo.wav" in browser.find_element(By.ID, "recent-title").find_element(By.XPATH, "..").text

        # A refused upload leaves the form as it was typed: the script shows the error in the list
        # and the page stays; the plain form (tests/test_web.py) gets them back from the server.
        bad = ARTIFACTS / "not-audio.wav"
        bad.write_bytes(b"RIFF\0\0\0\0WAVE" + bytes(range(256)))
        browser.find_element(By.ID, "rep").send_keys("lee")
        browser.find_element(By.ID, "deal").send_keys("globex")
        browser.find_element(By.ID, "files").send_keys(str(bad))
        browser.find_element(By.CSS_SELECTOR, "#upload button[type=submit]").click()
        refused = WebDriverWait(browser, 30).until(until.presence_of_element_located((By.CSS_SELECTOR, "#upload-list li.error")))
        assert "not-audio.wav" in refused.text
        assert browser.find_element(By.ID, "rep").get_attribute("value") == "lee"
        assert browser.find_element(By.ID, "deal").get_attribute("value") == "globex"
        bad.unlink()
    assert (ARTIFACTS / "web-result.png").stat().st_size > 10_000
