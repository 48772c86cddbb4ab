"""The platform in a real browser (Debian chromium through Selenium): log in, JupyterLab, a notebook that plots."""

from __future__ import annotations

import json
import shutil
import time

import pytest

import heliohub

from .conftest import shared
from .store_helpers import ROOT
from .test_platform import C1, USER_PASSWORD, platform  # noqa: F401 - the running platform fixture

ARTIFACTS = ROOT / "test-artifacts"

CHECK = {
    "cells": [{"cell_type": "code", "execution_count": None, "id": "check", "metadata": {}, "outputs": [],
               "source": "import matplotlib.pyplot as plt\n"
                         "ds = open_dataset('C1_CP_FGM_SPIN', '2001-06-11T20:00', '2001-06-11T20:30')\n"
                         "ds['B_mag__C1_CP_FGM_SPIN'].plot()\n"
                         "print('records', ds.sizes['time'])\n"
                         "plt.show()"}],
    "metadata": {"kernelspec": {"name": "heliohub", "display_name": "Python 3 (heliohub)", "language": "python"}},
    "nbformat": 4, "nbformat_minor": 5,
}


@pytest.fixture(scope="module")
def browser():
    if shutil.which("chromium") is None or shutil.which("chromedriver") is None:
        pytest.skip("Debian chromium and chromium-driver are not installed (python3 dev.py test installs them "
                    "when it can: as root with apt-get)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1000"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
    ARTIFACTS.mkdir(exist_ok=True)
    yield driver
    driver.quit()


def _wait(condition, timeout: float = 120, step: float = 0.5):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(step)
    raise TimeoutError("the page did not get there in time")


def test_log_in_spawn_and_plot_in_jupyterlab(platform, browser):  # noqa: F811
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    url = platform["url"]
    browser.get(f"{url}/hub/login")
    browser.find_element(By.ID, "username_input").send_keys("carol")
    browser.find_element(By.ID, "password_input").send_keys("a wrong password")
    browser.find_element(By.ID, "login_submit").click()
    _wait(lambda: "Invalid" in browser.page_source or "invalid" in browser.page_source, 30)
    browser.save_screenshot(str(ARTIFACTS / "01-wrong-password.png"))

    browser.find_element(By.ID, "username_input").clear()
    browser.find_element(By.ID, "username_input").send_keys("alice")
    browser.find_element(By.ID, "password_input").send_keys(USER_PASSWORD)
    browser.find_element(By.ID, "login_submit").click()
    _wait(lambda: "/user/alice/lab" in browser.current_url, 180)
    _wait(lambda: browser.find_elements(By.CSS_SELECTOR, ".jp-LauncherCard"), 120)
    cards = [e.text for e in browser.find_elements(By.CSS_SELECTOR, ".jp-LauncherCard")]
    assert any("Python 3 (heliohub)" in c for c in cards), cards
    _wait(lambda: any(e.text == "tutorials" for e in browser.find_elements(By.CSS_SELECTOR, ".jp-DirListing-itemText")),
          60)
    browser.save_screenshot(str(ARTIFACTS / "02-jupyterlab.png"))

    # a notebook put in alice's home through the server's contents API, opened and run in the browser
    cookies = {c["name"]: c["value"] for c in browser.get_cookies()}
    import requests

    xsrf = cookies.get("_xsrf", "")
    answer = requests.put(f"{url}/user/alice/api/contents/check.ipynb", cookies=cookies,
                          headers={"X-XSRFToken": xsrf}, timeout=30,
                          data=json.dumps({"type": "notebook", "content": CHECK}))
    assert answer.status_code in (200, 201), answer.text
    browser.get(f"{url}/user/alice/lab/tree/check.ipynb")
    cell = _wait(lambda: browser.find_elements(By.CSS_SELECTOR, ".jp-Notebook .jp-Cell .cm-content"), 120)
    _wait(lambda: "Idle" in "".join(e.text for e in browser.find_elements(By.ID, "jp-main-statusbar")), 180)
    assert cell
    for _ in range(20):  # JupyterLab re-renders the cell as the kernel connects: find it again until it holds
        try:
            editor = browser.find_elements(By.CSS_SELECTOR, ".jp-Notebook .jp-Cell .cm-content")[0]
            editor.click()
            editor.send_keys(Keys.SHIFT, Keys.ENTER)
            break
        except (StaleElementReferenceException, IndexError):
            time.sleep(0.5)
    try:
        image = _wait(lambda: browser.find_elements(By.CSS_SELECTOR, ".jp-OutputArea-output img"), 180)
    finally:
        browser.save_screenshot(str(ARTIFACTS / "03-plot.png"))
    assert image[0].size["width"] > 100
    expected = heliohub.read_file(shared("cluster", "cdf", C1)).sel(time=slice("2001-06-11T20:00", "2001-06-11T20:30"))
    assert f"records {expected.sizes['time']}" in browser.find_element(By.CSS_SELECTOR, ".jp-OutputArea").text
