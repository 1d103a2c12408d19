"""The default REST JSON parser: DRF's, with a limit on how deeply JSON may nest."""

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

# No request of the API nests deeper than a few levels; notify/broadcast payloads
# are free-form, and 32 levels leave them ample room.
MAX_JSON_DEPTH = 32


def json_depth_exceeds(value, *, limit: int) -> bool:
    """Whether a parsed JSON value nests lists/objects deeper than ``limit``."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


class DepthLimitedJSONParser(JSONParser):
    """Parses JSON and refuses, as a 400, documents nested deeper than the limit."""

    max_depth = MAX_JSON_DEPTH

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError as exc:
            # The decoder hit the interpreter's recursion limit (~1000 levels).
            raise ParseError(
                f"JSON parse error - nested deeper than {self.max_depth} levels."
            ) from exc
        if json_depth_exceeds(data, limit=self.max_depth):
            raise ParseError(
                f"JSON parse error - nested deeper than {self.max_depth} levels."
            )
        return data
