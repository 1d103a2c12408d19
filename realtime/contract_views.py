"""The AsyncAPI document of the Socket.IO API, as JSON, as YAML and as a page."""

import json

import yaml
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.response import TemplateResponse
from django.views.decorators.http import require_GET

from realtime.contract import CLIENT_EVENTS, SERVER_EVENTS, asyncapi_document, key_of


def _document(request: HttpRequest) -> dict:
    return asyncapi_document(host=request.get_host(), secure=request.is_secure())


@require_GET
def asyncapi_json(request: HttpRequest) -> HttpResponse:
    """GET /api/asyncapi.json."""
    return JsonResponse(_document(request), json_dumps_params={"indent": 2})


@require_GET
def asyncapi_yaml(request: HttpRequest) -> HttpResponse:
    """GET /api/asyncapi.yaml: the same document."""
    body = yaml.safe_dump(_document(request), sort_keys=False, allow_unicode=True)
    return HttpResponse(body, content_type="application/yaml; charset=utf-8")


def _shown(schema) -> str:
    return json.dumps(schema, indent=2, ensure_ascii=False)


@require_GET
def asyncapi_page(request: HttpRequest) -> HttpResponse:
    """A readable page of the document: each event, its payload and its ack,
    and the shapes they name. Server-rendered; no script, no CDN."""
    document = _document(request)
    messages = document["components"]["messages"]
    client = [
        {
            "name": event.name,
            "summary": event.summary,
            "payload": _shown(messages[key_of(event.name)]["payload"]),
            "ack": _shown(messages[key_of(event.name) + "Ack"]["payload"]),
        }
        for event in CLIENT_EVENTS
    ]
    server = [
        {
            "name": event.name,
            "summary": event.summary,
            "payload": _shown(messages[key_of(event.name)]["payload"]),
        }
        for event in SERVER_EVENTS
    ]
    schemas = [
        {"name": name, "schema": _shown(schema)}
        for name, schema in sorted(document["components"]["schemas"].items())
    ]
    return TemplateResponse(
        request,
        "realtime/asyncapi.html",
        {
            "document": document,
            "server": document["servers"]["bamchat"],
            "client_events": client,
            "server_events": server,
            "schemas": schemas,
        },
    )
