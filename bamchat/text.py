"""The one rule on characters every stored text obeys, whatever the field."""

from bamchat.errors import invalid


def check_storable_text(value: str, *, field: str) -> None:
    """Raise Invalid when the text holds a NUL or a lone surrogate.

    PostgreSQL refuses NUL in text and neither database can encode a lone
    surrogate as UTF-8, so such a text would fail at the write, not here.
    """
    if "\x00" in value:
        raise invalid(field, "Null characters are not allowed.")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise invalid(field, "Lone surrogate characters are not allowed.") from exc
