"""The OpenAPI document: paths as clients write them, closed response shapes
with nothing left untyped, and the error bodies documented."""

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def openapi():
    from drf_spectacular.generators import SchemaGenerator

    return SchemaGenerator().get_schema(request=None, public=True)


def test_paths_are_published_without_a_trailing_slash(openapi):
    assert "/auth/token" in openapi["paths"]
    assert [p for p in openapi["paths"] if p.endswith("/")] == []


def test_the_published_paths_are_the_ones_served():
    client = Client()
    response = client.post(
        "/auth/token", {"username": "nobody", "password": "x"}, "application/json"
    )
    assert response.status_code == 401


def _json_responses(openapi):
    for path, operations in openapi["paths"].items():
        for method, operation in operations.items():
            for status, response in operation["responses"].items():
                content = response.get("content", {}).get("application/json")
                if content:
                    yield f"{method.upper()} {path} {status}", content["schema"]


def test_every_json_response_names_a_closed_component(openapi):
    schemas = openapi["components"]["schemas"]
    open_or_inline = []
    for where, schema in _json_responses(openapi):
        if schema.get("type") == "array":
            schema = schema["items"]
        for option in schema.get("anyOf", [schema]):
            ref = option.get("$ref", "")
            component = schemas.get(ref.rsplit("/", 1)[-1])
            if component is None or component.get("additionalProperties") is not False:
                if ref != "#/components/schemas/ValidationError":
                    open_or_inline.append(where)
    assert open_or_inline == []


def test_errors_are_documented_on_every_operation(openapi):
    for path, operations in openapi["paths"].items():
        for method, operation in operations.items():
            responses = operation["responses"]
            for status in ("401", "403", "404", "429"):
                assert status in responses, f"{method} {path} lacks {status}"
            if "requestBody" in operation:
                body = responses["400"]["content"]["application/json"]["schema"]
                assert body == {"$ref": "#/components/schemas/ValidationError"}
    error = openapi["components"]["schemas"]["Error"]
    assert error["required"] == ["detail"]


def test_message_schema_lists_every_field_the_server_sends(openapi):
    message = openapi["components"]["schemas"]["Message"]
    for name in ("editedAt", "deleted", "attachments", "reactions", "replyTo"):
        assert name in message["required"]
    assert message["properties"]["editedAt"]["nullable"] is True


def test_an_id_with_a_dot_is_a_json_404_as_documented():
    from rest_framework.test import APIClient

    from tests.factories import UserFactory

    client = APIClient()
    client.force_authenticate(UserFactory())
    response = client.get("/bams/0.5")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("application/json")


def test_request_bodies_are_json_where_json_is_taken(openapi):
    for path, operations in openapi["paths"].items():
        for method, operation in operations.items():
            content = operation.get("requestBody", {}).get("content", {})
            if path.endswith("/attachments"):
                assert list(content) == ["multipart/form-data"]
            elif content:
                assert list(content) == ["application/json"], f"{method} {path}"
