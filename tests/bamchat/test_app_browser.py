"""The web client at /app/ in two headless Chromiums against a live daphne server.

Alice (desktop size) and Bob (phone size) chat: the unread count, typing,
presence, sending with a tempId, an HTML-looking message, edit, reaction, read
receipt, delete, an image attachment; then Bob's socket drops while Alice sends
and, once it is back, every message shows once and in seq order.

Screenshots go to ``$BAMCHAT_SCREENSHOTS`` when set, else to pytest's tmp folder.
"""

import json
import os
import urllib.request
import uuid
from pathlib import Path

import pytest

from tests.live import EVENT_TIMEOUT_S, PASSWORD
from tests.realtime.test_admin_browser import CHROMIUM_FLAGS, chromium_paths, wait_sync

pytestmark = pytest.mark.live

XSS = "<img src=x onerror=alert(1)>"
MESSAGES_JS = """
return Array.from(document.querySelectorAll("#messages li"), (li) => ({
  id: li.dataset.id || null,
  seq: li.dataset.seq ? Number(li.dataset.seq) : null,
  pending: li.classList.contains("pending"),
  text: (li.querySelector(".text") || {}).textContent || "",
  edited: !!li.querySelector(".edited"),
  reactions: Array.from(li.querySelectorAll(".reaction"), (b) => b.textContent),
  seen: (li.querySelector(".seen") || {}).textContent || "",
  images: Array.from(li.querySelectorAll(".attachments img"),
                     (img) => img.complete && img.naturalWidth > 0),
}));
"""


def post(base: str, path: str, body: dict, token: str | None = None) -> dict:
    """A JSON POST to the live server."""
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(
        base + path, json.dumps(body).encode(), headers, method="POST"
    )
    with urllib.request.urlopen(request, timeout=EVENT_TIMEOUT_S) as response:
        return json.loads(response.read())


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    folder = os.environ.get("BAMCHAT_SCREENSHOTS")
    path = Path(folder) if folder else tmp_path_factory.mktemp("screenshots")
    path.mkdir(parents=True, exist_ok=True)
    return path


class Browser:
    """One user's Chromium on the web client."""

    def __init__(self, server, name: str, size: tuple[int, int], shots: Path):
        chromium, driver_path = chromium_paths()
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service

        options = webdriver.ChromeOptions()
        options.binary_location = chromium
        for flag in CHROMIUM_FLAGS:
            options.add_argument(flag)
        options.add_argument(f"--window-size={size[0]},{size[1]}")
        self.driver = webdriver.Chrome(options=options, service=Service(driver_path))
        self.driver.set_page_load_timeout(EVENT_TIMEOUT_S * 3)
        self.server = server
        self.shots = shots
        self.username = f"{name}_{uuid.uuid4().hex[:6]}"
        self.id = post(
            server.url,
            "/auth/register",
            {"username": self.username, "password": PASSWORD},
        )["id"]

    def find(self, css: str):
        from selenium.webdriver.common.by import By

        return self.driver.find_element(By.CSS_SELECTOR, css)

    def wait(self, condition, what: str):
        return wait_sync(self.driver, lambda d: condition(), f"{self.username}: {what}")

    def js(self, script: str, *args):
        return self.driver.execute_script(script, *args)

    def messages(self) -> list[dict]:
        return self.js(MESSAGES_JS)

    def message(self, text: str) -> dict | None:
        found = [m for m in self.messages() if m["text"] == text and not m["pending"]]
        return found[0] if len(found) == 1 else None

    def wait_message(self, text: str, check=lambda m: True, what: str = "") -> dict:
        return self.wait(
            lambda: (m := self.message(text)) and check(m) and m,
            what or f"message {text!r} shown once",
        )

    def in_message(self, text: str, css: str):
        from selenium.common.exceptions import NoSuchElementException

        message = self.message(text)
        if not message:
            raise NoSuchElementException(f"{self.username} does not show {text!r}")
        return self.find(f'#messages li[data-id="{message["id"]}"] {css}')

    def click_in(self, text: str, css: str, what: str) -> None:
        """Click ``css`` in the message ``text``, found afresh: a receipt or a
        reaction may re-render the message between finding and clicking."""
        self.wait(
            lambda: (
                (element := self.in_message(text, css)) and (element.click() or True)
            ),
            what,
        )

    def connection(self) -> str:
        return self.find("#conn").get_attribute("data-state")

    def login(self) -> None:
        self.driver.get(self.server.url + "/app/")
        self.find("#login-form [name=username]").send_keys(self.username)
        self.find("#login-form [name=password]").send_keys(PASSWORD)
        self.find("#login-form button[type=submit]").click()
        self.wait(lambda: self.connection() == "connected", "connected after login")

    def send(self, text: str) -> None:
        from selenium.webdriver.common.keys import Keys

        self.find("#composer").send_keys(text, Keys.ENTER)

    def shot(self, name: str) -> None:
        self.driver.save_screenshot(str(self.shots / f"{name}-{self.username}.png"))

    def quit(self) -> None:
        self.driver.quit()


@pytest.fixture(scope="module")
def pair(server, shots):
    alice = Browser(server, "alice", (1200, 800), shots)
    try:
        bob = Browser(server, "bob", (390, 844), shots)  # a phone
    except BaseException:
        alice.quit()
        raise
    yield alice, bob
    alice.quit()
    bob.quit()


def png(path: Path) -> Path:
    from PIL import Image

    Image.new("RGB", (640, 400), (40, 120, 200)).save(path)
    return path


def test_two_users_chat_live_and_catch_up_after_a_drop(pair, shots, tmp_path):
    alice, bob = pair
    alice.login()

    # Alice creates a BAM with Bob from the form, and writes before Bob is here.
    alice.find("#create-form [name=title]").send_keys("Weekend plans")
    alice.find("#create-form [name=participants]").send_keys(bob.id)
    alice.find("#create-form button[type=submit]").click()
    alice.wait(lambda: alice.find("#room-title").text == "Weekend plans", "the BAM")
    alice.send("hello bob")
    alice.wait_message("hello bob", lambda m: m["seq"])
    assert not [m for m in alice.messages() if m["pending"]], alice.messages()

    bob.login()
    bob.wait(
        lambda: (
            bob.find("#bam-list .badge").text == "1"
            and f"{alice.username}: hello bob" in bob.find("#bam-list .preview").text
        ),
        "the BAM listed with 1 unread and Alice's message as its last",
    )
    bob.shot("01-list")
    bob.find("#bam-list button.bam").click()
    bob.wait_message("hello bob")
    bob.wait(lambda: bob.find("#composer").is_displayed(), "the room on a phone")
    assert not bob.find("#bam-list").is_displayed(), "list and room both on a phone"

    # Presence: each sees the other online.
    for me, other in ((alice, bob), (bob, alice)):
        me.wait(
            lambda me=me, other=other: (
                me.find(f'[data-presence-of="{other.id}"]').get_attribute("data-status")
                == "online"
            ),
            f"{other.username} online",
        )

    # Typing shows on the other side.
    alice.find("#composer").send_keys("are you")
    bob.wait(
        lambda: f"{alice.username} is typing" in bob.find("#typing").text,
        "Alice's typing indicator",
    )
    alice.find("#composer").clear()

    # A message that looks like HTML is text, and nothing runs.
    bob.send(XSS)
    alice.wait_message(XSS)
    assert alice.js("return document.querySelectorAll('#messages img').length") == 0
    assert bob.js("return document.querySelectorAll('#messages img').length") == 0
    alice.shot("02-xss-as-text")

    # Edit: Alice fixes her message; Bob sees the new text, marked edited.
    from selenium.webdriver.common.keys import Keys

    alice.click_in("hello bob", "button.edit", "the edit button")
    editor = alice.find("#messages input.edit-input")
    editor.clear()
    editor.send_keys("hello Bob!", Keys.ENTER)
    bob.wait_message("hello Bob!", lambda m: m["edited"], "the edited text")

    # Reaction: Bob reacts; Alice sees the count.
    bob.click_in("hello Bob!", 'button.react[data-emoji="👍"]', "the 👍 button")
    alice.wait_message("hello Bob!", lambda m: m["reactions"] == ["👍 1"], "👍 1")

    # Read receipt: Bob has read up to his own last message, so Alice's view of
    # it says nothing; Alice writes again and sees Bob's receipt under it.
    alice.send("see you saturday")
    alice.wait_message(
        "see you saturday", lambda m: bob.username in m["seen"], "seen by Bob"
    )

    # Delete: Alice deletes a message; Bob sees a tombstone.
    alice.send("oops, wrong room")
    bob.wait_message("oops, wrong room")
    alice.click_in("oops, wrong room", "button.delete", "the delete button")
    alice.wait(
        lambda: (
            alice.in_message("oops, wrong room", "button.delete").text
            == "Really delete?"
        ),
        "the confirm step",
    )
    alice.click_in("oops, wrong room", "button.delete", "the confirming click")
    bob.wait(
        lambda: (
            bob.message("oops, wrong room") is None
            and "message deleted"
            in bob.js("return document.getElementById('messages').textContent")
        ),
        "the tombstone",
    )

    # An image attachment: uploaded with progress, shown as a thumbnail.
    alice.find("#file").send_keys(str(png(tmp_path / "beach.png")))
    alice.send("the beach")
    bob.wait_message("the beach", lambda m: m["images"] == [True], "the thumbnail")
    alice.shot("03-chat")
    bob.shot("03-chat")

    # Bob's socket drops; Alice sends three messages; Bob comes back.
    bob.js("window.bamchat.socket.disconnect()")
    bob.wait(lambda: bob.connection() == "offline", "the offline state")
    alice.wait(
        lambda: (
            alice.find(f'[data-presence-of="{bob.id}"]').get_attribute("data-status")
            == "offline"
        ),
        "Bob offline",
    )
    missed = [f"while you were away {n}" for n in range(1, 4)]
    for text in missed:
        alice.send(text)
        alice.wait_message(text, lambda m: m["seq"])
    bob.shot("04-offline")
    bob.js("window.bamchat.socket.connect()")
    bob.wait(lambda: bob.connection() == "connected", "connected again")
    bob.wait(lambda: all(bob.message(t) for t in missed), "every missed message")

    # A transport drop: the client reconnects by itself and rejoins.
    bob.js("window.bamchat.socket.io.engine.close()")
    bob.wait(lambda: bob.connection() == "connected", "connected after a drop")
    alice.send("last one")
    bob.wait_message("last one")
    bob.shot("05-caught-up")

    shown = bob.messages()
    assert not [m for m in shown if m["pending"]]
    seqs = [m["seq"] for m in shown]
    assert seqs == sorted(set(seqs)), f"not once each in seq order: {seqs}"
    texts = [m["text"] for m in shown]
    assert texts == [
        "hello Bob!",
        XSS,
        "see you saturday",
        "message deleted",
        "the beach",
        *missed,
        "last one",
    ], texts
    assert list(shots.glob("*.png")), "no screenshots written"


def test_history_scrolls_up_through_every_page_once(pair, server):
    alice, _ = pair
    pair_tokens = post(
        server.url, "/auth/token", {"username": alice.username, "password": PASSWORD}
    )
    bam = post(server.url, "/bams", {"title": "Long history"}, pair_tokens["access"])
    texts = [f"old message {n:03}" for n in range(1, 121)]  # 50 per page: 3 pages
    for text in texts:
        post(
            server.url,
            f"/bams/{bam['id']}/messages",
            {"text": text},
            pair_tokens["access"],
        )
    alice.js("window.location.reload()")
    alice.wait(lambda: alice.connection() == "connected", "connected after reload")
    alice.wait(
        lambda: alice.find(f'#bam-list button[data-bam-id="{bam["id"]}"]'), "the BAM"
    ).click()
    alice.wait(lambda: len(alice.messages()) == 50, "the newest page")

    def scrolled_to_all() -> bool:
        alice.js("document.getElementById('history').scrollTop = 0")
        return len(alice.messages()) == len(texts)

    alice.wait(scrolled_to_all, "every older page after scrolling up")
    assert [m["text"] for m in alice.messages()] == texts

    # Every page has been read: scrolling up asks for nothing more.
    def no_more_pages() -> bool:
        alice.js("document.getElementById('history').scrollTop = 0")
        return not alice.find("#older").is_displayed()

    alice.wait(no_more_pages, "no more pages")
    assert [m["text"] for m in alice.messages()] == texts


def test_access_token_is_refreshed_before_it_expires(pair, deployment):
    alice, _ = pair
    short = deployment.start_server("short-tokens", JWT_ACCESS_MINUTES="1")
    try:
        alice.server = short
        alice.login()
        first = alice.js("return sessionStorage.getItem('bamchat.tokens')")
        # One-minute tokens are renewed after the client's 5 s floor.
        alice.wait(
            lambda: (
                alice.js("return sessionStorage.getItem('bamchat.tokens')")
                not in (first, None)
            ),
            "a refreshed token pair",
        )
        assert alice.connection() == "connected"
        alice.find("#logout").click()
        alice.wait(lambda: alice.find("#login-form").is_displayed(), "the login form")
        assert alice.js("return sessionStorage.getItem('bamchat.tokens')") is None
    finally:
        short.stop()
