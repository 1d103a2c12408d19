"""Checks of a write's input: each turns a raw client value into a stored one or
raises ``Invalid`` with the field's name. ``messaging.services`` applies them."""

from bamchat.errors import NotFound, invalid
from bamchat.text import check_storable_text
from messaging.models import (
    CONTENT_MAX_CHARS,
    TEMP_ID_MAX_CHARS,
    TITLE_MAX_CHARS,
    Message,
)
from messaging.selectors import parse_id


def message_text_of(body: dict):
    """The raw text of a message in a client's body: ``content``, or ``text``, the
    original server's name for it (REST and Socket.IO take both)."""
    return body.get("content", body.get("text"))


def clean_title(title) -> str:
    """A BAM title: a non-blank string of at most 200 characters."""
    if not isinstance(title, str) or not title.strip():
        raise invalid("title", "A title is required.")
    title = title.strip()
    check_storable_text(title, field="title")
    if len(title) > TITLE_MAX_CHARS:
        raise invalid(
            "title", f"Ensure this field has no more than {TITLE_MAX_CHARS} characters."
        )
    return title


def clean_content(content, *, allow_empty: bool = False) -> str:
    """Message content: a string of 1..4000 characters after trimming (0.. when the
    message carries attachments)."""
    if content is None:
        if allow_empty:
            return ""
        raise invalid("content", "This field is required.")
    if not isinstance(content, str):
        raise invalid("content", "Content must be a string.")
    content = content.strip()
    if not content and not allow_empty:
        raise invalid("content", "Content may not be blank.")
    check_storable_text(content, field="content")
    if len(content) > CONTENT_MAX_CHARS:
        raise invalid(
            "content",
            f"Ensure this field has no more than {CONTENT_MAX_CHARS} characters.",
        )
    return content


def clean_type(value) -> str:
    """Message type: one of text, system, image, file (text when absent)."""
    if value is None:
        return Message.Type.TEXT
    if not isinstance(value, str) or value not in Message.Type.values:
        raise invalid("type", f"Type must be one of: {', '.join(Message.Type.values)}.")
    return value


def clean_temp_id(value) -> str | None:
    """Client deduplication id: a short string (an integer becomes its digits)."""
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise invalid("tempId", "tempId must be a string.")
    value = str(value)
    check_storable_text(value, field="tempId")
    if len(value) > TEMP_ID_MAX_CHARS:
        raise invalid(
            "tempId", f"Ensure tempId has no more than {TEMP_ID_MAX_CHARS} characters."
        )
    return value


def clean_reply_to_id(value) -> int | None:
    """The id of the message answered (``replyToId``), or None when absent."""
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise invalid("replyToId", "replyToId must be a message id.")
    try:
        return parse_id(value, what="message")
    except NotFound as exc:
        raise invalid("replyToId", "replyToId must be a message id.") from exc
