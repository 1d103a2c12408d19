"""The landing page, the web client's page and the Socket.IO bundle it ships."""

import hashlib
import re
from pathlib import Path

import pytest

from tests.live import ROOT, ci

STATIC = ROOT / "bamchat" / "static" / "app"
VENDOR = STATIC / "vendor"
# socket.io-client 4.8.4, the version tests/js/package.json pins:
# dist/socket.io.esm.min.js and the package's LICENSE, as npm installs them.
CLIENT_VERSION = "4.8.4"
BUNDLE_SHA256 = "771c3872e7d9bf81020615fda67ef0fd2aa61fcaf1990100714a46fa2c39f8a1"
LICENSE_SHA256 = "73cb68c437d59e066f9386ef97be57298df4db119fdbd7d7150817c6dbd9f189"
NPM_PACKAGE = ROOT / "tests" / "js" / "node_modules" / "socket.io-client"


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_shipped_bundle_is_the_pinned_release():
    assert sha256(VENDOR / "socket.io.esm.min.js") == BUNDLE_SHA256
    assert sha256(VENDOR / "socket.io-client.LICENSE") == LICENSE_SHA256
    pinned = (ROOT / "tests" / "js" / "package.json").read_text()
    assert f'"socket.io-client": "{CLIENT_VERSION}"' in pinned, (
        "tests/js/package.json pins another socket.io-client: ship that release's "
        "dist/socket.io.esm.min.js and LICENSE and update the hashes here"
    )


def test_shipped_bundle_matches_the_installed_npm_package():
    if not (NPM_PACKAGE / "package.json").exists():
        if ci():
            pytest.fail("tests/js/node_modules is missing; CI must install it")
        pytest.skip("tests/js/node_modules is not installed (scripts/dev.py test)")
    installed = (NPM_PACKAGE / "package.json").read_text()
    assert f'"version": "{CLIENT_VERSION}"' in installed
    shipped = (VENDOR / "socket.io.esm.min.js").read_bytes()
    assert shipped == (NPM_PACKAGE / "dist" / "socket.io.esm.min.js").read_bytes()
    license_text = (VENDOR / "socket.io-client.LICENSE").read_bytes()
    assert license_text == (NPM_PACKAGE / "LICENSE").read_bytes()


def test_client_code_never_parses_html():
    sinks = re.compile(r"innerHTML|outerHTML|insertAdjacentHTML|document\.write|eval\(")
    offenders = [
        f"{path.name}:{number}: {line.strip()}"
        for path in sorted(STATIC.glob("*.js"))
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if sinks.search(line)
    ]
    assert not offenders, "\n".join(offenders)


@pytest.mark.django_db
def test_landing_page_links_the_web_client(client):
    response = client.get("/")
    assert response.status_code == 200
    assert b'href="/app/"' in response.content


@pytest.mark.django_db
def test_web_client_page_loads_its_modules_under_a_strict_policy(client):
    assert client.get("/app").headers["Location"] == "/app/"
    response = client.get("/app/")
    assert response.status_code == 200
    assert b'<script type="module" src="/static/app/main.js">' in response.content
    policy = response["Content-Security-Policy"]
    assert "script-src 'self'" in policy
    assert "'unsafe-inline'" not in policy


@pytest.mark.django_db
@pytest.mark.parametrize(
    "name", ["main.js", "room.js", "vendor/socket.io.esm.min.js", "app.css"]
)
def test_static_files_of_the_client_are_served(client, name):
    response = client.get(f"/static/app/{name}")
    assert response.status_code == 200
