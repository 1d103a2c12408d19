"""The AsyncAPI document of the Socket.IO API: every event the namespace
handles is in it, its references resolve, its schemas are the OpenAPI
components, and its page and the landing page link what a newcomer needs."""

import json
import re

import jsonschema
import pytest
import yaml
from django.test import Client

from bamchat.schema_format import json_schema
from realtime.namespace import BamNamespace
from tests.live import ROOT, ci

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def documents():
    client = Client()
    asyncapi = client.get("/api/asyncapi.json")
    openapi = client.get("/api/schema?format=json")
    assert asyncapi.status_code == openapi.status_code == 200
    return asyncapi.json(), json.loads(openapi.content)


def _resolve(document, ref: str):
    node = document
    for part in ref.removeprefix("#/").split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def _refs(node):
    if isinstance(node, dict):
        if isinstance(node.get("$ref"), str):
            yield node["$ref"]
        for value in node.values():
            yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


def test_document_is_asyncapi_3_and_every_reference_resolves(documents):
    asyncapi, _ = documents
    assert asyncapi["asyncapi"] == "3.0.0"
    server = asyncapi["servers"]["bamchat"]
    assert server["pathname"] == "/socket.io/"
    auth = _resolve(asyncapi, server["x-socketio-auth"]["$ref"])
    assert auth["required"] == ["token"]
    for ref in set(_refs(asyncapi)):
        _resolve(asyncapi, ref)
    for name, schema in asyncapi["components"]["schemas"].items():
        jsonschema.Draft7Validator.check_schema(schema), name


# The official AsyncAPI 3.0.0 schema, as the @asyncapi/specs npm package ships it
# (pinned in tests/js/package.json).
ASYNCAPI_SPEC = (
    ROOT / "tests/js/node_modules/@asyncapi/specs/schemas/3.0.0-without-$id.json"
)


def test_document_validates_against_the_official_asyncapi_schema(documents):
    if not ASYNCAPI_SPEC.exists():
        reason = "tests/js/node_modules is not installed (scripts/dev.py test)"
        if ci():
            pytest.fail(f"{reason}; CI must install it")
        pytest.skip(reason)
    asyncapi, _ = documents
    spec = json.loads(ASYNCAPI_SPEC.read_text())
    errors = [
        f"{list(e.absolute_path)}: {e.message[:200]}"
        for e in jsonschema.Draft7Validator(spec).iter_errors(asyncapi)
    ]
    assert errors == []


def test_operations_use_their_channels_messages(documents):
    asyncapi, _ = documents
    for key, operation in asyncapi["operations"].items():
        channel = operation["channel"]["$ref"]
        for message in operation["messages"]:
            assert message["$ref"].startswith(channel + "/messages/"), key
        if operation["action"] == "receive":
            assert operation["reply"]["messages"], key


def test_every_handled_client_event_is_published_and_nothing_else(documents):
    asyncapi, _ = documents
    handled = {
        name.removeprefix("on_").replace("_", "-")
        for name in dir(BamNamespace)
        if getattr(getattr(BamNamespace, name), "client_event", False)
    }
    published = {
        asyncapi["channels"][op["channel"]["$ref"].rsplit("/", 1)[-1]]["address"]
        for op in asyncapi["operations"].values()
        if op["action"] == "receive"
    }
    assert published == handled


def test_schemas_are_the_openapi_components(documents):
    asyncapi, openapi = documents
    components = openapi["components"]["schemas"]
    assert asyncapi["components"]["schemas"] == json_schema(components)
    for shared in ("Message", "Attachment", "ReactionSummary", "MessageAck"):
        assert shared in components


def test_yaml_is_the_same_document(documents):
    asyncapi, _ = documents
    response = Client().get("/api/asyncapi.yaml")
    assert response.status_code == 200
    assert yaml.safe_load(response.content) == asyncapi


def test_the_page_shows_every_event_and_loads_nothing_from_elsewhere(documents):
    asyncapi, _ = documents
    page = Client().get("/api/asyncapi").content.decode()
    for channel in asyncapi["channels"].values():
        assert f'id="event-{channel["address"]}"' in page
    assert "<script" not in page
    assert re.findall(r'(?:src|href)="(?:https?:)?//', page) == []


def test_landing_page_links_docs_asyncapi_admin_health_and_client():
    page = Client().get("/").content.decode()
    for href in (
        "/api/docs",
        "/api/asyncapi",
        "/api/asyncapi.json",
        "/admin/",
        "/health",
        "/app/",
    ):
        assert f'href="{href}' in page, href
