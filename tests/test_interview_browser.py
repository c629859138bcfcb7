"""The interview page in a real browser: Selenium drives Debian's headless Chromium.

Clicks through a textbook disc-herniation case and a red-flag case with the keyboard-usable answer
buttons, and checks the final tier and advice against ``serve.predict`` on the same answers. The
screenshot goes to ``tmp_path`` (``SCIATICA_INTERVIEW_SCREENSHOT`` names another file: that is
how the README's picture is made). Skipped, with the reason, without Chromium, its driver or
Selenium.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import serve
from tests.cds_support import serve_app
from tests.test_questions import DISC_PATIENT
from vignettes.schema import FIELD_BY_NAME

webdriver = pytest.importorskip("selenium.webdriver")
CHROMIUM = shutil.which("chromium")
DRIVER = shutil.which("chromedriver")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not (CHROMIUM and DRIVER), reason="needs chromium and chromium-driver"),
]
QUESTIONNAIRE = "http://sciatica-triage.example.org/fhir/Questionnaire/sciatica-intake"


@pytest.fixture(scope="module")
def page_url(trained: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    from serve.cds import CdsSettings, create_app

    predictor = serve.load("models:/sciatica-triage@champion")
    settings = CdsSettings(feedback_db=tmp_path_factory.mktemp("cds") / "f.sqlite3")
    app = create_app(
        settings,
        predict=predictor.predict,
        from_response=lambda qr: {},
        questionnaire_url=QUESTIONNAIRE,
    )
    with serve_app(app) as url:
        yield f"{url}/interview"


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}",
        "--window-size=390,900",  # a phone-sized window
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(str(DRIVER)), options=options)
    driver.set_page_load_timeout(120)
    try:
        yield driver
    finally:
        driver.quit()


POLL_SECONDS = 0.05
"""Between a wait's checks; Selenium's default, 0.5 s, idled up to that long at every page."""


def _click_through(browser: Any, url: str, patient: dict[str, Any]) -> dict[str, Any]:
    """Answer every question the page asks from ``patient`` (keyboard: focus, then Enter)."""
    from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    def settled() -> None:
        # The next page has replaced the old one and finished loading: reading a node any sooner
        # can meet one the browser is still swapping out ("Node ... does not belong to the
        # document"), a race CI met under load.
        WebDriverWait(browser, 120, poll_frequency=POLL_SECONDS).until(
            lambda b: (
                b.execute_script("return document.readyState") == "complete"
                and (b.find_elements(By.ID, "summary") or b.find_elements(By.ID, "question"))
            )
        )

    def gone(element: Any) -> bool:
        # staleness_of, plus Chromium's other word for a node of a replaced document
        try:
            element.is_enabled()
        except StaleElementReferenceException:
            return True
        except WebDriverException as error:
            if "does not belong to the document" in str(error):
                return True
            raise
        return False

    def submitted(element: Any) -> None:
        WebDriverWait(browser, 120, poll_frequency=POLL_SECONDS).until(lambda _: gone(element))
        settled()

    browser.get(url)
    settled()
    for _ in range(45):
        if browser.find_elements(By.ID, "summary"):
            break
        field = browser.find_element(By.ID, "question").get_attribute("data-field")
        value = patient.get(field)
        spec = FIELD_BY_NAME[field]
        if spec.kind in ("int", "float"):
            box = browser.find_element(By.ID, "value")
            box.send_keys(str(value))
            box.send_keys(Keys.ENTER)
            submitted(box)
            continue
        wanted = "null" if value is None else json.dumps(value)
        button = next(
            b
            for b in browser.find_elements(By.CSS_SELECTOR, "button[name='answer']")
            if b.get_attribute("value") == wanted
        )
        button.send_keys(Keys.ENTER)  # a keyboard user: the button has focus, Enter presses it
        submitted(button)
    else:
        raise AssertionError("the interview did not end")
    assert not browser.find_elements(By.CSS_SELECTOR, "input[name='state']")  # no form left
    tier = browser.find_element(By.ID, "tier").get_attribute("data-tier")
    advice = [li.text for li in browser.find_elements(By.CSS_SELECTOR, "#advice li")]
    answers = json.loads(browser.find_element(By.ID, "answers").get_attribute("data-answers"))
    return {"tier": tier, "advice": advice, "answers": answers}


def test_a_textbook_case_ends_with_the_served_triage(
    browser: Any, page_url: str, tmp_path: Path
) -> None:
    out = _click_through(browser, page_url, DISC_PATIENT)
    expected = serve.predict(out["answers"])
    assert out["tier"] == expected.urgency
    assert out["advice"] == _by_audience(expected)
    assert set(out["answers"]) <= set(DISC_PATIENT)
    target = Path(os.environ.get("SCIATICA_INTERVIEW_SCREENSHOT") or tmp_path / "interview.png")
    browser.save_screenshot(str(target))
    assert target.stat().st_size > 1000


def test_a_red_flag_case_ends_in_an_emergency(browser: Any, page_url: str) -> None:
    patient = {**DISC_PATIENT, "saddle_numbness": True, "bladder_bowel_dysfunction": True}
    out = _click_through(browser, page_url, patient)
    expected = serve.predict(out["answers"])
    assert out["tier"] == "emergency" == expected.urgency
    assert out["advice"] == _by_audience(expected)


def _by_audience(pred: Any) -> list[str]:
    """The advice as the page shows it: the patient's first, then the clinician's."""
    pairs = list(zip(pred.advice, pred.advice_audiences, strict=True))
    return [t for t, a in pairs if a == "patient"] + [t for t, a in pairs if a == "clinician"]
