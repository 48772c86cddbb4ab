"""The platform in a real browser (Debian chromium through Selenium): log in, JupyterLab, a notebook that plots."""

from __future__ import annotations

import json
import shutil
import time

import pytest

import heliohub

from .conftest import PASSWORDS, real_file
from .store_helpers import ROOT
from .test_platform import C1

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


def test_log_in_spawn_and_plot_in_jupyterlab(platform, browser):
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
    browser.find_element(By.ID, "password_input").send_keys(PASSWORDS["alice"])
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
    expected = heliohub.read_file(real_file("cluster", "cdf", C1)).sel(
        time=slice("2001-06-11T20:00", "2001-06-11T20:30"))
    assert f"records {expected.sizes['time']}" in browser.find_element(By.CSS_SELECTOR, ".jp-OutputArea").text


# The workers' addresses in the Bokeh document of a Dask dashboard page (its column data sources' "address").
WORKER_ADDRESSES = """
const doc = window.Bokeh && Bokeh.documents && Bokeh.documents[0];
if (!doc) return null;
const found = new Set();
for (const model of doc.all_models) {
  const data = model.data;
  if (!data) continue;
  const address = data instanceof Map ? data.get("address") : data.address;
  if (address) for (const a of Array.from(address)) if (String(a).startsWith("tls://")) found.add(String(a));
}
return found.size ? Array.from(found) : null;
"""


def _log_in(browser, url: str, name: str) -> None:
    from selenium.webdriver.common.by import By

    browser.execute_cdp_cmd("Network.clearBrowserCookies", {})  # every path's (the hub's and each server's)
    browser.get(f"{url}/hub/login")
    browser.find_element(By.ID, "username_input").send_keys(name)
    browser.find_element(By.ID, "password_input").send_keys(PASSWORDS[name])
    browser.find_element(By.ID, "login_submit").click()


def test_the_login_page_names_the_platform(platform, browser):
    from selenium.webdriver.common.by import By

    browser.execute_cdp_cmd("Network.clearBrowserCookies", {})
    browser.get(f"{platform['url']}/hub/login")
    assert browser.title == "heliohub"
    assert "heliohub" in browser.find_element(By.CSS_SELECTOR, ".announcement").text
    assert browser.find_elements(By.CSS_SELECTOR, "a[href='signup']")


def test_a_clusters_dashboard_opens_in_jupyterlab_for_its_owner_only(platform, alice, browser):
    """alice's Gateway cluster, its workers' dashboard in JupyterLab's Dask panel (dask-labextension), reached
    through the hub and her own server; bob, logged in, gets nothing of it."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    output = alice.run("from dask_gateway import Gateway\ncluster = Gateway().new_cluster(shutdown_on_close=False)\n"
                       "cluster.scale(2)\nclient = cluster.get_client()\nclient.wait_for_workers(2, timeout=120)\n"
                       "print(cluster.name, cluster.dashboard_link)\nclient.close()\n")
    name, link = output.split()
    url = platform["url"]
    assert link == f"{url}/user/alice/dask-gateway/clusters/{name}/status"
    try:
        _log_in(browser, url, "alice")
        _wait(lambda: "/user/alice/lab" in browser.current_url, 180)
        tab = _wait(lambda: browser.find_elements(By.CSS_SELECTOR, "li[data-id='dask-dashboard-launcher']"), 120)
        time.sleep(2)  # JupyterLab restores its layout: the Dask panel may be open already
        if not any(e.is_displayed() for e in browser.find_elements(By.CSS_SELECTOR, ".dask-URLInput input")):
            tab[0].click()
        field = _wait(lambda: [e for e in browser.find_elements(By.CSS_SELECTOR, ".dask-URLInput input")
                               if e.is_displayed()], 60)[0]
        field.clear()
        field.send_keys(link, Keys.ENTER)
        workers = _wait(lambda: [b for b in browser.find_elements(By.CSS_SELECTOR, ".dask-DashboardListing-item "
                                                                                   "button")
                                 if b.get_attribute("value") == "Workers" and b.is_enabled()], 120)
        workers[0].click()
        frame = _wait(lambda: browser.find_elements(By.CSS_SELECTOR, ".dask-DaskDashboard-widget iframe"), 60)[0]
        assert f"/user/alice/dask-gateway/clusters/{name}/individual-workers" in frame.get_attribute("src")
        browser.switch_to.frame(frame)  # Bokeh draws the table on a canvas: its data say which workers it shows
        shown = _wait(lambda: browser.execute_script(WORKER_ADDRESSES), 120)
        browser.switch_to.default_content()
        assert len(shown) == 2, shown
        time.sleep(1)  # the table's first draw
        browser.save_screenshot(str(ARTIFACTS / "04-dask-dashboard.png"))

        _log_in(browser, url, "bob")
        _wait(lambda: "/user/bob/" in browser.current_url or "/hub/" in browser.current_url, 120)
        browser.get(link)
        _wait(lambda: "403" in browser.page_source or "/user/bob/" in browser.current_url
              or "Forbidden" in browser.page_source, 60)
        assert "Dask Diagnostic UI" not in browser.page_source and "Bokeh" not in browser.title
        browser.save_screenshot(str(ARTIFACTS / "05-dashboard-refused-to-another-user.png"))
    finally:
        browser.switch_to.default_content()
        alice.run(f"from dask_gateway import Gateway\nGateway().stop_cluster({name!r})\n")
