"""A new message's input, checked before anything is stored.

Socket.IO handlers check a message as it arrives and hand the draft to the
group commit (``services.messages_create``); REST and admin go through
``services.message_create``, which drafts and stores in one call.
"""

from dataclasses import dataclass

from messaging.attachments import clean_attachment_ids
from messaging.cleaning import (
    clean_content,
    clean_reply_to_id,
    clean_temp_id,
    clean_type,
)
from messaging.models import Message
from messaging.selectors import parse_id


@dataclass(frozen=True)
class MessageDraft:
    """A new message whose input has been checked; not yet stored."""

    bam_id: int
    sender: object  # a User; only ``pk`` and ``username`` are read
    content: str
    type: str
    temp_id: str | None
    to_user_id: object
    attachment_pks: tuple[int, ...]
    reply_to_id: int | None = None

    @property
    def plain(self) -> bool:
        """No attachments, recipient, reply or possible mention, not a system
        message: the common case, which needs none of the other checks (a batch
        of them is stored in two or three statements in all)."""
        return (
            not self.attachment_pks
            and self.to_user_id in (None, "")
            and self.type != Message.Type.SYSTEM
            and self.reply_to_id is None
            and "@" not in self.content
        )


def message_draft(
    *,
    bam_id,
    sender,
    content,
    type=None,
    temp_id=None,
    to_user_id=None,
    attachment_ids=None,
    reply_to_id=None,
) -> MessageDraft:
    """Check a new message's input (Invalid, or NotFound for a bad BAM id)."""
    attachment_pks = clean_attachment_ids(attachment_ids)
    return MessageDraft(
        content=clean_content(content, allow_empty=bool(attachment_pks)),
        type=clean_type(type),
        temp_id=clean_temp_id(temp_id),
        bam_id=parse_id(bam_id, what="BAM"),
        sender=sender,
        to_user_id=to_user_id,
        attachment_pks=tuple(attachment_pks),
        reply_to_id=clean_reply_to_id(reply_to_id),
    )
