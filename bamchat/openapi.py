"""How the OpenAPI document is published: paths as clients write them, closed
response shapes, the error bodies, and the Socket.IO payload shapes as shared
components (the AsyncAPI document refers to the same ones)."""

from drf_spectacular.openapi import AutoSchema
from rest_framework.views import APIView

# The codes a refusal carries (SPEC: Socket.IO acks; REST ``code`` where given).
ERROR_CODES = ["invalid", "not_found", "forbidden", "rate_limited", "too_large"]

ERROR_SCHEMAS = {
    "Error": {
        "type": "object",
        "description": "A refusal in DRF's shape: what went wrong, for a person.",
        "properties": {
            "detail": {"type": "string"},
            "code": {
                "type": "string",
                "description": "A contract code (" + ", ".join(ERROR_CODES) + ") "
                "or, for a refused token, the token library's own code.",
            },
            "messages": {
                "type": "array",
                "items": {"type": "object", "additionalProperties": True},
                "description": "Why a token was refused, per token kind.",
            },
        },
        "required": ["detail"],
        "additionalProperties": False,
    },
    "ValidationError": {
        "type": "object",
        "description": "Field errors: each field names its messages (nested "
        "fields an object of the same kind); or ``detail`` for the whole body.",
        "properties": {"detail": {"type": "string"}},
        "additionalProperties": {
            "anyOf": [
                {"type": "array", "items": {"type": "string"}},
                {"type": "object", "additionalProperties": True},
            ]
        },
    },
}


def _error(description: str, name: str = "Error") -> dict:
    return {
        "description": description,
        "content": {
            "application/json": {"schema": {"$ref": f"#/components/schemas/{name}"}}
        },
    }


# A refused write may name the field it refuses (e.g. a push endpoint that
# belongs to someone else): then the body has the field-error shape.
FIELD_REFUSAL = {
    "description": "Not allowed to the caller; a refused field is named.",
    "content": {
        "application/json": {
            "schema": {
                "anyOf": [
                    {"$ref": "#/components/schemas/Error"},
                    {"$ref": "#/components/schemas/ValidationError"},
                ]
            }
        }
    },
}

ERROR_RESPONSES = {
    "400": _error("Invalid input.", "ValidationError"),
    "401": _error("No credentials, or a refused token (WWW-Authenticate: Bearer)."),
    "403": _error("Not allowed to the caller."),
    "404": _error("No such thing, or not visible to the caller."),
    "413": _error("The body is larger than the server accepts (code too_large)."),
    "429": _error("Too many requests; slow down."),
}


def paths_without_trailing_slash(endpoints, **kwargs):
    """Publish ``/auth/token``, not ``/auth/token/``: every route takes both, and
    the contract and its clients write paths without the slash."""
    return [
        (path.rstrip("/") or "/", path_regex, method, callback)
        for path, path_regex, method, callback in endpoints
    ]


def contract_components(result, generator, **kwargs):
    """Close the response shapes, document the error bodies and add the
    Socket.IO payload shapes, so the AsyncAPI document can share them."""
    from realtime.contract import EVENT_REQUEST_SERIALIZERS, EVENT_SERIALIZERS

    resolver = AutoSchema()
    view = APIView()
    view.request = None
    view.format_kwarg = None
    resolver.view = view
    resolver.registry = generator.registry
    resolver.method, resolver.path, resolver.path_regex = "GET", "/", "/"
    for serializer in EVENT_SERIALIZERS:
        resolver.resolve_serializer(serializer(), "response")
    for serializer in EVENT_REQUEST_SERIALIZERS:
        resolver.resolve_serializer(serializer(), "request")
    built = generator.registry.build({})
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    schemas.update(built.get("schemas", {}))
    schemas.update(ERROR_SCHEMAS)
    for name, schema in schemas.items():
        closed = not name.endswith("Request") and "properties" in schema
        if closed:
            schema.setdefault("additionalProperties", False)
    for operations in result.get("paths", {}).values():
        for operation in operations.values():
            body = operation.get("requestBody", {}).get("content", {})
            if "application/json" in body:
                # JSON in, JSON out: forms are parsed for the browsable API only.
                operation["requestBody"]["content"] = {
                    "application/json": body["application/json"]
                }
            responses = operation.setdefault("responses", {})
            has_input = "requestBody" in operation or operation.get("parameters")
            for code, response in ERROR_RESPONSES.items():
                if code in ("400", "413") and not has_input:
                    continue
                if code == "403" and "requestBody" in operation:
                    response = FIELD_REFUSAL
                responses.setdefault(code, response)
    return result
