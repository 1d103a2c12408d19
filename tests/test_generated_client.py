"""A client generated from the published OpenAPI document (openapi-python-client)
logs in, lists BAMs and reads history against a live server, with every field
the server sends typed in its models."""

import asyncio
import importlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.live import PASSWORD, Api

pytestmark = pytest.mark.live


@pytest.fixture(scope="module")
def generated_client(server, tmp_path_factory):
    """The ``bamchat_client`` package generated from the server's /api/schema."""
    where = tmp_path_factory.mktemp("generated")
    spec = where / "openapi.json"

    async def fetch():
        api = Api(server.url)
        try:
            async with api.session.get(server.url + "/api/schema?format=json") as r:
                assert r.status == 200
                spec.write_bytes(await r.read())
        finally:
            await api.close()

    asyncio.run(fetch())
    config = where / "config.yaml"
    config.write_text("package_name_override: bamchat_client\n")
    binary = Path(sys.executable).with_name("openapi-python-client")
    result = subprocess.run(
        [
            str(binary),
            "generate",
            "--path",
            str(spec),
            "--config",
            str(config),
            "--meta",
            "none",
            "--output-path",
            str(where / "bamchat_client"),
            "--fail-on-warning",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        # Its post-generation hooks run ruff, which is in this environment's bin
        # folder whether or not that folder is on PATH.
        env={**os.environ, "PATH": f"{binary.parent}{os.pathsep}{os.environ['PATH']}"},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    sys.path.insert(0, str(where))
    try:
        yield importlib.import_module("bamchat_client")
    finally:
        sys.path.remove(str(where))
        for name in [m for m in sys.modules if m.startswith("bamchat_client")]:
            del sys.modules[name]


def test_generated_client_logs_in_lists_bams_and_reads_history(
    server, generated_client
):
    async def setup():
        api = Api(server.url)
        try:
            alice, bob = await api.account("gen"), await api.account("genpeer")
            bam = await api.bam(alice, bob, title="generated")
            first = await api.post_message(bob, bam["id"], "hello")
            await api.post_message(alice, bam["id"], f"hi @{bob.username}")
            await api.request(
                "POST",
                f"/bams/{bam['id']}/messages/{first['id']}/reactions",
                token=alice.access,
                json={"emoji": "👍"},
                expect=200,
            )
            return alice, bam
        finally:
            await api.close()

    alice, bam = asyncio.run(setup())
    client_module = importlib.import_module("bamchat_client.client")
    login = importlib.import_module("bamchat_client.api.auth.auth_token_create")
    bams_list = importlib.import_module("bamchat_client.api.bams.bams_list")
    history = importlib.import_module("bamchat_client.api.bams.bams_messages_list")
    models = importlib.import_module("bamchat_client.models")

    anonymous = client_module.Client(
        base_url=server.url, raise_on_unexpected_status=True
    )
    pair = login.sync(
        client=anonymous,
        body=models.LoginRequest(username=alice.username, password=PASSWORD),
    )
    assert isinstance(pair, models.TokenPair), pair

    client = client_module.AuthenticatedClient(
        base_url=server.url, token=pair.access, raise_on_unexpected_status=True
    )
    page = bams_list.sync(client=client)
    assert isinstance(page, models.PaginatedBamListItemList), page
    (item,) = [b for b in page.results if b.id == bam["id"]]
    assert item.title == "generated"
    assert item.unread_count == 1 and item.unread_mentions == 0
    assert item.last_message.content.startswith("hi @")

    messages = history.sync(bam_id=bam["id"], client=client)
    assert isinstance(messages, models.PaginatedMessageList), messages
    newest, oldest = messages.results
    assert newest.mentions and newest.edited_at is None and not newest.deleted
    assert oldest.reactions[0].emoji == "👍" and oldest.reactions[0].count == 1
    assert oldest.text == oldest.content == "hello"
    assert newest.sender.username == alice.username
