"""Attachments: storing uploads, their signed download URLs, their payload shape,
the rule for using them in a message, and the cleanup of unused uploads."""

import hashlib
import logging
import os
import unicodedata
import uuid
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core import signing
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import Sum
from django.utils import timezone

from bamchat.errors import NotFound, TooLarge, invalid
from messaging.imaging import inspect_upload
from messaging.models import Attachment, Message
from messaging.selectors import bam_get_for_participant, is_participant, parse_id

logger = logging.getLogger(__name__)
User = get_user_model()

MAX_ATTACHMENTS_PER_MESSAGE = 10
UNUSED_UPLOAD_TTL = timedelta(hours=24)  # the contract's lifetime of an unused upload
NAME_MAX_CHARS = 255
SIGNING_SALT = "bamchat.attachments.url"
ORIGINAL, THUMBNAIL = "o", "t"
HASH_CHUNK_BYTES = 1024 * 1024


# -- upload --------------------------------------------------------------------------
def clean_file_name(raw) -> str:
    """A display name from the client's file name: no path, no control characters."""
    name = os.path.basename(str(raw or "").replace("\\", "/"))
    name = "".join(
        ch
        for ch in unicodedata.normalize("NFC", name)
        if unicodedata.category(ch)[0] != "C"
    ).strip()
    if len(name) > NAME_MAX_CHARS:
        stem, ext = os.path.splitext(name)
        name = stem[: NAME_MAX_CHARS - len(ext[:20])] + ext[:20]
    return name or "file"


def _storage_name(bam_id: int, suffix: str = "") -> str:
    # Random names: the client's file name never reaches the storage.
    return f"attachments/{bam_id}/{uuid.uuid4().hex}{suffix}"


def _digest(fileobj) -> str:
    sha = hashlib.sha256()
    fileobj.seek(0)
    while chunk := fileobj.read(HASH_CHUNK_BYTES):
        sha.update(chunk)
    fileobj.seek(0)
    return sha.hexdigest()


def attachment_upload(*, bam_id, uploader, upload) -> Attachment:
    """Store a participant's upload in a BAM: an image stripped and thumbnailed, or a
    file kept byte for byte; NotFound for outsiders, Invalid without a file."""
    bam = bam_get_for_participant(bam_id=bam_id, user=uploader)
    if upload is None or not hasattr(upload, "read"):
        raise invalid("file", "Send the file as the multipart field `file`.")
    _check_quota(uploader=uploader, adding=upload.size)  # before any decoding
    inspected = inspect_upload(upload)
    saved: list[str] = []
    try:
        if inspected.image is not None:
            body = ContentFile(inspected.image.data)
            thumb = inspected.thumbnail
            thumb_name = default_storage.save(
                _storage_name(bam.pk, ".thumb"), ContentFile(thumb.data)
            )
            saved.append(thumb_name)
            thumb_type = thumb.content_type
        else:
            body = upload  # a temporary file is moved, not copied, on the local disk
            thumb_name, thumb_type = "", ""
        digest = _digest(body)
        file_name = default_storage.save(_storage_name(bam.pk), body)
        saved.append(file_name)
        with transaction.atomic():
            # One upload at a time per user from here on, so parallel uploads
            # cannot pass the quota together.
            User.objects.select_for_update().filter(pk=uploader.pk).first()
            _check_quota(uploader=uploader, adding=body.size)
            return Attachment.objects.create(
                bam=bam,
                uploader=uploader,
                name=clean_file_name(getattr(upload, "name", "")),
                size=body.size,
                content_type=inspected.content_type,
                kind=inspected.kind,
                width=inspected.width,
                height=inspected.height,
                file=file_name,
                thumbnail=thumb_name,
                thumbnail_content_type=thumb_type,
                digest=digest,
            )
    except BaseException:
        storage_delete(saved)
        raise


def _check_quota(*, uploader, adding: int) -> None:
    """TooLarge when the user's uploads in no message yet, with ``adding`` bytes
    more, would pass ATTACHMENT_QUOTA_BYTES."""
    quota = settings.ATTACHMENT_QUOTA_BYTES
    unsent = Attachment.objects.filter(uploader=uploader, message__isnull=True)
    pending = unsent.aggregate(total=Sum("size"))["total"] or 0
    if pending + adding > quota:
        raise TooLarge(
            f"Your uploads not yet sent take {pending} of your {quota} bytes: send "
            "them in a message, or wait until unsent ones expire (24 h)."
        )


def storage_delete(names) -> None:
    """Delete stored files by name; a missing file or a storage error is logged."""
    for name in names:
        if not name:
            continue
        try:
            default_storage.delete(name)
        except Exception:
            logger.exception("Could not delete stored file %s", name)


def attachment_storage_names(*, bam_id: int) -> list[str]:
    """Storage names of every file and thumbnail of a BAM's attachments."""
    names = []
    for file, thumb in Attachment.objects.filter(bam_id=bam_id).values_list(
        "file", "thumbnail"
    ):
        names += [file, thumb]
    return [n for n in names if n]


# -- signed URLs ---------------------------------------------------------------------
def _signer() -> signing.TimestampSigner:
    return signing.TimestampSigner(salt=SIGNING_SALT)


def attachment_url(attachment: Attachment, *, variant: str = ORIGINAL) -> str:
    """A signed, expiring download URL of an attachment (or of its thumbnail)."""
    sig = _signer().sign(f"{attachment.pk}.{variant}").split(":", 1)[1]
    path = f"/attachments/{attachment.pk}"
    if variant == THUMBNAIL:
        path += "/thumbnail"
    return f"{settings.ATTACHMENT_URL_BASE}{path}?sig={sig}"


def signature_valid(*, attachment_id: int, variant: str, sig) -> bool:
    """Whether ``sig`` is an unexpired signature of this attachment's variant."""
    if not isinstance(sig, str) or not sig:
        return False
    try:
        _signer().unsign(
            f"{attachment_id}.{variant}:{sig}",
            max_age=settings.ATTACHMENT_URL_TTL_S,
        )
    except signing.BadSignature:  # SignatureExpired is one
        return False
    return True


def attachment_payload(attachment: Attachment) -> dict:
    """The upload shape of an attachment, with fresh signed URLs."""
    image = attachment.kind == Attachment.Kind.IMAGE
    return {
        "id": str(attachment.pk),
        "bamId": str(attachment.bam_id),
        "name": attachment.name,
        "size": attachment.size,
        "contentType": attachment.content_type,
        "kind": attachment.kind,
        "width": attachment.width,
        "height": attachment.height,
        "url": attachment_url(attachment),
        "thumbnailUrl": attachment_url(attachment, variant=THUMBNAIL)
        if image and attachment.thumbnail
        else None,
    }


def attachment_for_download(*, attachment_id, user, sig, variant: str) -> Attachment:
    """The attachment if ``sig`` is valid, or if ``user`` takes part in its BAM and
    it is in a message (until then, only its uploader may read it); NotFound
    otherwise, so outsiders learn nothing (expired signatures included)."""
    pk = parse_id(attachment_id, what="attachment")
    attachment = Attachment.objects.filter(pk=pk).first()
    if attachment is None:
        raise NotFound("No such attachment.")
    allowed = signature_valid(attachment_id=pk, variant=variant, sig=sig)
    if not allowed and user is not None and user.is_authenticated:
        shown = attachment.message_id is not None or attachment.uploader_id == user.pk
        allowed = shown and is_participant(bam_id=attachment.bam_id, user_id=user.pk)
    if not allowed or (variant == THUMBNAIL and not attachment.thumbnail):
        raise NotFound("No such attachment.")
    return attachment


# -- use in a message ----------------------------------------------------------------
def clean_attachment_ids(raw) -> list[int]:
    """``attachmentIds``: a list of at most 10 ids (none when absent)."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise invalid("attachmentIds", "attachmentIds must be a list of ids.")
    if len(raw) > MAX_ATTACHMENTS_PER_MESSAGE:
        raise invalid(
            "attachmentIds",
            f"At most {MAX_ATTACHMENTS_PER_MESSAGE} attachments per message.",
        )
    ids = []
    for item in raw:
        if isinstance(item, bool) or not isinstance(item, str | int):
            raise invalid("attachmentIds", "attachmentIds must be a list of ids.")
        try:
            ids.append(parse_id(item, what="attachment"))
        except NotFound as exc:
            raise invalid(
                "attachmentIds", f"{item!r} is not an attachment id."
            ) from exc
    return list(dict.fromkeys(ids))


def attachments_claim(*, ids: list[int], bam_id: int, sender) -> list[Attachment]:
    """Lock the sender's unused uploads to this BAM for a message being written;
    Invalid unless every id is one (inside the message's transaction)."""
    if not ids:
        return []
    rows = {
        a.pk: a
        for a in Attachment.objects.select_for_update().filter(
            pk__in=ids, bam_id=bam_id, uploader_id=sender.pk, message__isnull=True
        )
    }
    unusable = [str(i) for i in ids if i not in rows]
    if unusable:
        raise invalid(
            "attachmentIds",
            "Not your unused uploads to this BAM: " + ", ".join(unusable) + ".",
        )
    return [rows[i] for i in ids]


def attachments_attach(*, message: Message, attachments: list[Attachment]) -> None:
    """Mark claimed attachments as used by the message."""
    if attachments:
        Attachment.objects.filter(pk__in=[a.pk for a in attachments]).update(
            message=message
        )
        for attachment in attachments:
            attachment.message = message


def message_attachments_delete(*, message_id: int) -> int:
    """Delete a message's attachments and, after commit, their files (for a message
    erased for good); returns how many went."""
    rows = list(
        Attachment.objects.filter(message_id=message_id).values_list(
            "pk", "file", "thumbnail"
        )
    )
    if not rows:
        return 0
    Attachment.objects.filter(pk__in=[pk for pk, _, _ in rows]).delete()
    names = [name for _, file, thumb in rows for name in (file, thumb)]
    transaction.on_commit(lambda: storage_delete(names))
    return len(rows)


# -- cleanup -------------------------------------------------------------------------
def attachments_cleanup(*, older_than: timedelta = UNUSED_UPLOAD_TTL, now=None) -> int:
    """Delete uploads never attached to a message (or whose message row is gone)
    older than ``older_than``, files included; returns how many went."""
    cutoff = (now or timezone.now()) - older_than
    removed = 0
    stale = Attachment.objects.filter(message__isnull=True, created_at__lt=cutoff)
    for pk in list(stale.values_list("pk", flat=True)):
        with transaction.atomic():
            row = (
                Attachment.objects.select_for_update()
                .filter(pk=pk, message__isnull=True)
                .first()
            )
            if row is None:  # attached meanwhile
                continue
            names = [row.file, row.thumbnail]
            row.delete()
            transaction.on_commit(lambda names=names: storage_delete(names))
            removed += 1
    if removed:
        logger.info("Removed %s unused upload(s)", removed)
    return removed
