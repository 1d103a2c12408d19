"""Wire formats shared by every payload."""

from datetime import UTC, datetime


def iso(value: datetime | None) -> str | None:
    """A time as ISO 8601 UTC with a ``Z``, as every payload carries it."""
    if value is None:
        return None
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
