"""The published contracts as a checker of what live servers send.

``Contract`` holds the OpenAPI document (``/api/schema``) and the AsyncAPI
document (``/api/asyncapi.json``) and validates, with jsonschema, a REST
response, a Socket.IO event or an ack against them. Response and event shapes
are closed there (``additionalProperties: false``), so a field the contract
does not have fails. Clients in ``tests.live`` report into ``VIOLATIONS``;
the autouse fixture in ``tests/conftest.py`` fails the test that saw one.
"""

from __future__ import annotations

import json
import re
import urllib.request

import jsonschema
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT7

from bamchat.schema_format import json_schema

OPENAPI_URI = "urn:bamchat:openapi"
ASYNCAPI_URI = "urn:bamchat:asyncapi"

# What a live test's clients received that the contracts do not describe.
VIOLATIONS: list[str] = []


def _absolute_refs(node, base: str):
    if isinstance(node, list):
        return [_absolute_refs(item, base) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: _absolute_refs(value, base) for key, value in node.items()}
    if isinstance(out.get("$ref"), str) and out["$ref"].startswith("#"):
        out["$ref"] = base + out["$ref"]
    return out


def _path_pattern(template: str) -> re.Pattern:
    parts = re.split(r"(\{[^}]+\})", template)
    body = "".join("[^/]+" if p.startswith("{") else re.escape(p) for p in parts)
    return re.compile(body + "/?")


class Contract:
    """Both published documents, ready to validate payloads."""

    def __init__(self, openapi: dict, asyncapi: dict) -> None:
        self.openapi = _absolute_refs(json_schema(openapi), OPENAPI_URI)
        self.asyncapi = _absolute_refs(asyncapi, ASYNCAPI_URI)
        self.registry = Registry().with_resources(
            [
                (OPENAPI_URI, Resource.from_contents(self.openapi, DRAFT7)),
                (ASYNCAPI_URI, Resource.from_contents(self.asyncapi, DRAFT7)),
            ]
        )
        self.paths = [
            (_path_pattern(template), operations)
            for template, operations in self.openapi["paths"].items()
        ]
        messages = self.asyncapi["components"]["messages"]
        self.server_events: dict[str, dict] = {}
        self.acks: dict[str, dict] = {}
        for operation in self.asyncapi["operations"].values():
            channel = operation["channel"]["$ref"].rsplit("/", 1)[-1]
            event = self.asyncapi["channels"][channel]["address"]
            if operation["action"] == "send":
                self.server_events[event] = messages[channel]["payload"]
            else:
                self.acks[event] = messages[channel + "Ack"]["payload"]
        self.refused_ack = {"$ref": ASYNCAPI_URI + "#/components/schemas/AckError"}

    def _errors(self, schema: dict, value) -> list[str]:
        validator = jsonschema.Draft7Validator(
            schema,
            registry=self.registry,
            format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER,
        )
        return [
            f"{'/'.join(map(str, e.absolute_path)) or '(top)'}: {e.message}"
            for e in sorted(validator.iter_errors(value), key=str)[:5]
        ]

    def event_errors(self, event: str, payload) -> list[str]:
        """Why a server-sent event breaks the AsyncAPI document (empty: it doesn't)."""
        schema = self.server_events.get(event)
        if schema is None:
            return [f"event {event!r} is not in the AsyncAPI document"]
        return self._errors(schema, payload)

    def ack_errors(self, event: str, ack) -> list[str]:
        """Why an ack breaks the document; an event the contract does not define
        must be refused."""
        return self._errors(self.acks.get(event, self.refused_ack), ack)

    def response_errors(self, method: str, path: str, status: int, body) -> list[str]:
        """Why a JSON response breaks the OpenAPI document. A status the operation
        does not document is an error when it is a success."""
        path = path.split("?", 1)[0]
        for pattern, operations in self.paths:
            if pattern.fullmatch(path) and method.lower() in operations:
                responses = operations[method.lower()]["responses"]
                response = responses.get(str(status), responses.get("default"))
                if response is None:
                    if status < 300:
                        return [f"{method} {path}: status {status} not documented"]
                    return []
                content = response.get("content", {}).get("application/json")
                if content is None:
                    if body is None:
                        return []
                    return [f"{method} {path} {status}: a body none is documented"]
                return [
                    f"{method} {path} {status} {e}"
                    for e in self._errors(content["schema"], body)
                ]
        if status < 300 and body is not None:
            return [f"{method} {path}: not in the OpenAPI document"]
        return []


def report(where: str, errors: list[str], payload) -> None:
    """Note a violation for the running test to fail on."""
    if errors:
        shown = json.dumps(payload, default=str)[:800]
        VIOLATIONS.append(f"{where}: {'; '.join(errors)}\n  payload: {shown}")


def _get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=30) as resp:  # a loopback test server
        return json.load(resp)


_PUBLISHED: list[Contract] = []


def published(base_url: str) -> Contract:
    """The contracts a live server publishes, fetched once: every server of this
    code publishes the same, so the first one asked answers for all."""
    if not _PUBLISHED:
        _PUBLISHED.append(
            Contract(
                _get_json(base_url + "/api/schema?format=json"),
                _get_json(base_url + "/api/asyncapi.json"),
            )
        )
    return _PUBLISHED[0]


_GENERATED: list[Contract] = []


def generated() -> Contract:
    """The same documents made in this process (for in-process tests), once."""
    if not _GENERATED:
        from drf_spectacular.generators import SchemaGenerator

        from realtime.contract import asyncapi_document

        openapi = SchemaGenerator().get_schema(request=None, public=True)
        _GENERATED.append(
            Contract(openapi, asyncapi_document(host="testserver", secure=False))
        )
    return _GENERATED[0]


def check_response(
    contract: Contract, method: str, path: str, status: int, content_type: str, body
) -> None:
    """Report a JSON REST response (the documents themselves aside) that the
    OpenAPI document does not describe; live and in-process clients both."""
    if content_type.startswith("application/json") and not path.startswith("/api/"):
        report(
            f"REST {method} {path}",
            contract.response_errors(method, path, status, body),
            body,
        )
