"""OpenAPI 3.0 schemas as plain JSON Schema (draft 7), which AsyncAPI and
validators read."""


def json_schema(schema):
    """An OpenAPI 3.0 schema as plain JSON Schema: ``nullable`` becomes null as an
    allowed type (or value, for an enum)."""
    if isinstance(schema, list):
        return [json_schema(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out = {key: json_schema(value) for key, value in schema.items()}
    if out.pop("nullable", False):
        if "enum" in out and None not in out["enum"]:
            out["enum"] = [*out["enum"], None]
        if isinstance(out.get("type"), str):
            out["type"] = [out["type"], "null"]
        elif "type" not in out:
            out = {"anyOf": [out, {"type": "null"}]}
    return out
