"""The realtime admin in headless Chromium against a live daphne server.

Staff log into the admin, watch the dashboard count a new socket without reloading,
then disconnect that socket from the Live connections page and the client drops.
Selenium drives Debian's ``chromium`` through ``chromedriver``; both are blocking,
so every browser call runs in a worker thread while the Socket.IO client keeps
running on the event loop.
"""

import asyncio
import shutil
import uuid

import pytest

from tests.live import EVENT_TIMEOUT_S, PASSWORD, ci

pytestmark = pytest.mark.live

DASHBOARD = "/admin/realtime/serverprocess/dashboard/"
CONNECTIONS = "/admin/realtime/serverprocess/connections/"
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
# One read of everything the test looks at, so rows replaced by a refresh between
# two element lookups cannot give a torn view.
PAGE_STATE_JS = """
const rooms = {};
for (const tr of document.querySelectorAll("#rt-rooms tr[data-key]")) {
  rooms[tr.dataset.key] = Array.from(tr.cells, (td) => td.textContent);
}
const state = document.getElementById("rt-state");
return {
  connections: document.getElementById("rt-connections").textContent,
  live: state.dataset.live,
  state: state.textContent,
  rooms: rooms,
  notReloaded: window.__rtNotReloaded === true,
};
"""


def chromium_paths() -> tuple[str, str]:
    """Paths of chromium and chromedriver; fails in CI, skips elsewhere, if absent."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    missing = [
        name
        for name, path in (("chromium", chromium), ("chromium-driver", driver))
        if not path
    ]
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("the selenium Python package")
    if missing:
        if ci():
            pytest.fail(
                "CI must run the admin browser test, but this is missing: "
                f"{', '.join(missing)}. Install with `apt-get install -y chromium "
                "chromium-driver` and the dev extras (selenium)."
            )
        pytest.skip("Chromium not installed: admin browser test skipped")
    return chromium, driver


@pytest.fixture(scope="module")
def browser():
    """A headless Chromium driven by Selenium, closed after the module."""
    chromium, driver_path = chromium_paths()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(driver_path))
    driver.set_page_load_timeout(EVENT_TIMEOUT_S * 3)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def staff_browser(browser, deployment, server):
    """The browser logged into the live server's admin as a fresh staff superuser."""
    from selenium.webdriver.common.by import By

    username = f"staff_{uuid.uuid4().hex[:8]}"
    deployment.create_staff(username)
    browser.get(f"{server.url}/admin/login/?next={DASHBOARD}")
    browser.find_element(By.ID, "id_username").send_keys(username)
    browser.find_element(By.ID, "id_password").send_keys(PASSWORD)
    browser.find_element(By.CSS_SELECTOR, "form#login-form [type=submit]").click()
    wait_sync(
        browser,
        lambda d: d.find_elements(By.ID, "rt-dashboard"),
        f"the dashboard after logging in as {username}",
    )
    return browser


def wait_sync(driver, condition, what: str, timeout: float = EVENT_TIMEOUT_S):
    """Wait until ``condition(driver)`` is truthy; fail saying what did not appear."""
    from selenium.common.exceptions import (
        NoSuchElementException,
        StaleElementReferenceException,
        TimeoutException,
    )
    from selenium.webdriver.support.ui import WebDriverWait

    waiting = WebDriverWait(
        driver,
        timeout,
        poll_frequency=0.1,
        ignored_exceptions=(NoSuchElementException, StaleElementReferenceException),
    )
    try:
        return waiting.until(condition)
    except TimeoutException:
        raise AssertionError(
            f"{what} did not show within {timeout}s; the browser is at "
            f"{driver.current_url!r} titled {driver.title!r}"
        ) from None


async def wait_page(driver, condition, what: str, timeout: float = EVENT_TIMEOUT_S):
    """Wait, off the event loop, until the dashboard state satisfies ``condition``."""
    seen: list[dict] = []

    def check(d):
        state = d.execute_script(PAGE_STATE_JS)
        seen.append(state)
        return state if condition(state) else None

    try:
        return await asyncio.to_thread(wait_sync, driver, check, what, timeout)
    except AssertionError as error:
        raise AssertionError(f"{error}; last dashboard state: {seen[-1:]}") from None


async def test_dashboard_counts_a_socket_live_and_staff_disconnect_it(
    staff_browser, server, api, peers
):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    driver = staff_browser
    await asyncio.to_thread(driver.get, server.url + DASHBOARD)
    first = await wait_page(
        driver, lambda s: s["live"] == "yes", "a live refresh of the dashboard"
    )
    dashboard_tab = driver.current_window_handle
    # A reload would wipe this flag: every later check proves the page stayed put.
    await asyncio.to_thread(driver.execute_script, "window.__rtNotReloaded = true;")
    before = int(first["connections"])

    owner = await api.account("dash")
    bam = await api.bam(owner, title="Dashboard watch")
    room = f"bam-{bam['id']}"
    peer = await peers(owner)
    joined = await peer.call("join-bam", bam["id"])
    assert joined["ok"], joined

    await wait_page(
        driver,
        lambda s: (
            s["notReloaded"]
            and int(s["connections"]) == before + 1
            and s["rooms"].get(room) == [room, "1", "1"]
        ),
        f"{before + 1} connections and room {room} with one socket, without a reload",
    )

    sid = peer.client.get_sid()
    await asyncio.to_thread(driver.switch_to.new_window, "tab")
    await asyncio.to_thread(driver.get, f"{server.url}{CONNECTIONS}?q={sid}")

    def run_action() -> None:
        box = f'input[name="_selected_action"][value="{sid}"]'
        wait_sync(
            driver,
            lambda d: d.find_element(By.CSS_SELECTOR, box),
            f"socket {sid} in the Connections list",
        ).click()
        Select(driver.find_element(By.NAME, "action")).select_by_value(
            "disconnect_sockets"
        )
        driver.find_element(By.CSS_SELECTOR, 'button[name="index"]').click()
        wait_sync(
            driver,
            lambda d: (
                "disconnect 1 socket"
                in d.find_element(By.CSS_SELECTOR, ".messagelist .success").text
            ),
            "the admin's confirmation of the disconnect",
        )

    await asyncio.to_thread(run_action)
    try:
        await asyncio.wait_for(peer.disconnected.wait(), EVENT_TIMEOUT_S)
    except TimeoutError:
        raise AssertionError(
            f"socket {sid} was still connected {EVENT_TIMEOUT_S}s after staff "
            f"disconnected it from the admin; server log:\n{server.log()}"
        ) from None
    assert not peer.client.connected

    await asyncio.to_thread(driver.close)
    await asyncio.to_thread(driver.switch_to.window, dashboard_tab)
    await wait_page(
        driver,
        lambda s: (
            s["notReloaded"]
            and int(s["connections"]) == before
            and room not in s["rooms"]
        ),
        f"the dashboard back to {before} connections with room {room} gone",
    )
