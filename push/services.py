"""Writes on push subscriptions, mutes and deliveries: every push rule lives here.

A delivery is claimed with one conditional UPDATE (pending and due → sending), so
of two workers that race for it, one sends and the other does nothing: a push
goes to a device at most once per message. A worker that dies mid-request leaves
the delivery in ``sending``; it is not sent again.
"""

import hmac
import logging
from datetime import UTC, datetime, timedelta
from functools import cache, lru_cache

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from bamchat.errors import Forbidden, NotFound, invalid
from bamchat.sql import column, db_value, table
from messaging import statements
from messaging.models import Membership, Mention, Message
from messaging.selectors import bam_get_for_participant, parse_id
from messaging.serializers import ATTACHMENT_PREVIEW, message_preview
from messaging.statements import AUDIENCE_CACHE_SIZE
from push.endpoints import allowed_endpoint, auth_valid, b64url_decode, p256dh_valid
from push.metrics import PUSH_DEVICES_REPLACED, failures
from push.models import ENDPOINT_MAX_CHARS, PushDelivery, PushSubscription
from push.webpush import PushAnswer, send_push
from realtime.selectors import user_socket_count

logger = logging.getLogger(__name__)

GONE_STATUSES = (404, 410)


def clean_endpoint(endpoint) -> str:
    """The normalised URL of an endpoint this server may send to, or a field error."""
    if not isinstance(endpoint, str) or not endpoint:
        raise invalid("endpoint", "An endpoint URL is required.")
    if len(endpoint) > ENDPOINT_MAX_CHARS:
        raise invalid("endpoint", "Endpoints are URLs of at most 2000 characters.")
    allowed = allowed_endpoint(endpoint)
    if allowed is None:
        raise invalid(
            "endpoint",
            "Push endpoints must be plain https URLs (no userinfo, backslashes, "
            "escapes or spaces in the host) of a push service this server allows "
            "(PUSH_ALLOWED_HOSTS).",
        )
    return allowed.url


def clean_keys(keys) -> tuple[str, str]:
    """``(p256dh, auth)`` from a subscription's ``keys``, or a field error."""
    if not isinstance(keys, dict):
        raise invalid("keys", "keys must be an object with p256dh and auth.")
    p256dh, auth = keys.get("p256dh"), keys.get("auth")
    if not isinstance(p256dh, str) or not p256dh_valid(p256dh):
        raise invalid("keys", "keys.p256dh must be a base64url point on P-256.")
    if not isinstance(auth, str) or not auth_valid(auth):
        raise invalid("keys", "keys.auth must be a base64url 16-byte secret.")
    return p256dh, auth


def clean_expiration(value) -> datetime | None:
    """``expirationTime`` (milliseconds since the epoch, or null) as a datetime."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise invalid("expirationTime", "expirationTime must be a number or null.")
    try:
        return datetime.fromtimestamp(value / 1000, tz=UTC)
    except (OverflowError, OSError, ValueError) as exc:
        raise invalid("expirationTime", "expirationTime is out of range.") from exc


def same_keys(subscription: PushSubscription, p256dh: str, auth: str) -> bool:
    """Whether these keys are the subscription's own (compared as bytes)."""
    stored = b64url_decode(subscription.p256dh) + b64url_decode(subscription.auth)
    return hmac.compare_digest(stored, b64url_decode(p256dh) + b64url_decode(auth))


@transaction.atomic
def subscription_save(
    *, user, endpoint, keys, expiration_time=None
) -> tuple[PushSubscription, bool]:
    """Register a device for ``user``: the same endpoint again updates it, and
    another user's endpoint moves only with the keys it has (else Forbidden)."""
    endpoint = clean_endpoint(endpoint)
    p256dh, auth = clean_keys(keys)
    expiration = clean_expiration(expiration_time)
    # One user's registrations take turns, so the device cap holds under races.
    list(get_user_model().objects.select_for_update().filter(pk=user.pk).values("pk"))
    subscription, created = PushSubscription.objects.select_for_update().get_or_create(
        endpoint=endpoint,
        defaults={
            "user": user,
            "p256dh": p256dh,
            "auth": auth,
            "expiration": expiration,
        },
    )
    if not created:
        if subscription.user_id != user.pk:
            if not same_keys(subscription, p256dh, auth):
                message = (
                    "This endpoint is registered to another account; only the "
                    "browser holding its keys can register it again."
                )
                raise Forbidden(message, fields={"endpoint": [message]})
            # The previous owner loses a device.
            statements.audience_changed(user_id=subscription.user_id)
        subscription.user = user
        subscription.p256dh, subscription.auth = p256dh, auth
        subscription.expiration = expiration
        subscription.save()  # updated_at: this device's last registration
    devices_over_cap_delete(user=user)
    return subscription, created


def devices_over_cap_delete(*, user) -> int:
    """Delete the user's devices past ``PUSH_MAX_DEVICES_PER_USER``, those registered
    longest ago first; how many went."""
    cap = settings.PUSH["MAX_DEVICES_PER_USER"]
    stale = list(
        PushSubscription.objects.filter(user=user)
        .order_by("-updated_at", "-pk")
        .values_list("pk", flat=True)[cap:]
    )
    if stale:
        PushSubscription.objects.filter(pk__in=stale).delete()
        PUSH_DEVICES_REPLACED.inc(len(stale))
        logger.info(
            "User %s over %d push devices: %d removed", user.pk, cap, len(stale)
        )
    return len(stale)


@transaction.atomic
def subscription_delete(*, user, subscription_id) -> None:
    """Remove one of the user's own subscriptions; NotFound for anyone else's."""
    pk = parse_id(subscription_id, what="subscription")
    deleted, _ = PushSubscription.objects.filter(pk=pk, user=user).delete()
    if not deleted:
        raise NotFound("No such subscription.")


@transaction.atomic
def membership_mute_set(*, bam_id, user, muted) -> Membership:
    """Mute or unmute a BAM's pushes for one participant (NotFound for outsiders)."""
    if not isinstance(muted, bool):
        raise invalid("muted", "muted must be true or false.")
    bam = bam_get_for_participant(bam_id=bam_id, user=user)
    membership = Membership.objects.select_for_update().get(bam=bam, user=user)
    if membership.muted != muted:
        membership.muted = muted
        membership.save(update_fields=["muted"])
    return membership


def message_push_payload(message: Message, *, mentioned: bool = False) -> dict:
    """What the device decrypts: who wrote what where, short enough to show;
    ``type`` is ``mention`` for a recipient the message mentions."""
    return {
        "type": "mention" if mentioned else "new-message",
        "bamId": str(message.bam_id),
        "messageId": str(message.pk),
        "senderId": str(message.sender_id),
        "senderName": message.sender.username,
        "title": message.bam.title,
        "body": message_preview(message) or ATTACHMENT_PREVIEW,
    }


def bam_topic(bam_id: int) -> str:
    """The push ``Topic`` of a BAM (≤ 32 URL-safe characters): a newer push of the
    same BAM replaces an undelivered older one."""
    return f"bam-{bam_id}"


def push_wanted(
    *, bam_id: int, sender_id: int, audience_version: int | None = None
) -> bool:
    """Whether any participant but the sender, not muting the BAM, has a push
    subscription: the check made after every message, before anything is queued.

    One statement in SQL (``tests/messaging/test_statements.py`` compares it with
    the ORM query it stands for). With the audience version the message write
    read, answered from this process's cache when it has it: a subscription,
    mute or membership change bumps the version.
    """
    if audience_version is None:
        return _push_wanted(bam_id, sender_id)
    return _push_wanted_at(bam_id, sender_id, audience_version)


@lru_cache(maxsize=AUDIENCE_CACHE_SIZE)
def _push_wanted_at(bam_id: int, sender_id: int, audience_version: int) -> bool:
    return _push_wanted(bam_id, sender_id)


def _push_wanted(bam_id: int, sender_id: int) -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            _push_wanted_sql(connection.vendor),
            [bam_id, db_value(Membership, "muted", False), sender_id],
        )
        return cursor.fetchone() is not None


@cache
def _push_wanted_sql(vendor: str) -> str:
    # Built once per database vendor from the models' own table and column names.
    sub, member = table(PushSubscription), table(Membership)
    sub_user = column(PushSubscription, "user")
    m_user, m_bam = column(Membership, "user"), column(Membership, "bam")
    return (
        f"SELECT 1 FROM {sub} JOIN {member} ON {member}.{m_user} = {sub}.{sub_user} "
        f"WHERE {member}.{m_bam} = %s AND {member}.{column(Membership, 'muted')} = %s "
        f"AND {sub}.{sub_user} <> %s LIMIT 1"
    )


def mentioned_ids(*, message_id: int) -> set[int]:
    """Users a message's text names now."""
    return set(
        Mention.objects.filter(message_id=message_id, named=True).values_list(
            "user_id", flat=True
        )
    )


@transaction.atomic
def deliveries_plan(*, message_id: int, user_ids=None) -> list[int]:
    """Create the deliveries of a message: each device of each participant but the
    sender who has not muted the BAM, or whom it mentions, and has no live socket
    on any process. With ``user_ids`` (mentioned by an edit), theirs only."""
    message = Message.objects.filter(pk=message_id).first()
    if message is None:
        return []
    mentioned = mentioned_ids(message_id=message_id)
    wanted_users = Q(user__memberships__muted=False) | Q(user_id__in=mentioned)
    if user_ids is not None:
        wanted_users = Q(user_id__in=set(user_ids) & mentioned)
    subscriptions = list(
        PushSubscription.objects.filter(
            Q(user__memberships__bam_id=message.bam_id) & wanted_users
        )
        .exclude(user_id=message.sender_id)
        .exclude(expiration__lte=timezone.now())
        .values_list("pk", "user_id")
    )
    connected: dict[int, bool] = {}
    wanted = []
    for subscription_id, user_id in subscriptions:
        if user_id not in connected:
            connected[user_id] = user_socket_count(user_id=user_id) > 0
        if not connected[user_id]:
            wanted.append(subscription_id)
    PushDelivery.objects.bulk_create(
        [PushDelivery(subscription_id=s, message_id=message_id) for s in wanted],
        ignore_conflicts=True,
    )
    return list(
        PushDelivery.objects.filter(
            message_id=message_id,
            subscription_id__in=wanted,
            state=PushDelivery.State.PENDING,
            attempts=0,
        ).values_list("pk", flat=True)
    )


def delivery_claim(*, delivery_id: int) -> bool:
    """Take a due pending delivery for this worker; False if another has it."""
    now = timezone.now()
    return bool(
        PushDelivery.objects.filter(
            pk=delivery_id,
            state=PushDelivery.State.PENDING,
            next_attempt_at__lte=now,
        ).update(
            state=PushDelivery.State.SENDING,
            attempts=F("attempts") + 1,
            updated_at=now,
        )
    )


def retry_delay_s(*, answer: PushAnswer, retries: int) -> float:
    """How long to wait before the next try: Retry-After if given, else back-off."""
    push = settings.PUSH
    if answer.retry_after_s is not None:
        return min(answer.retry_after_s, push["RETRY_MAX_S"])
    return min(push["RETRY_BASE_S"] * 2**retries, push["RETRY_MAX_S"])


def subscription_send(
    *, subscription: PushSubscription, payload: dict, topic: str
) -> PushAnswer:
    """Send one push; a 404 or 410 deletes the subscription."""
    answer = send_push(
        endpoint=subscription.endpoint,
        p256dh=subscription.p256dh,
        auth=subscription.auth,
        payload=payload,
        topic=topic,
        ttl_s=settings.PUSH["TTL_S"],
    )
    if answer.status in GONE_STATUSES:
        PushSubscription.objects.filter(pk=subscription.pk).delete()
        logger.info(
            "Push subscription %s gone (HTTP %s); deleted",
            subscription.pk,
            answer.status,
        )
    return answer


def delivery_send(*, delivery_id: int, retry) -> str:
    """Send a claimed-if-due delivery and record the outcome; its new state.

    ``retry(delivery_id, when)`` enqueues the next try; it runs in the same
    transaction as the state change, so a retry is never lost nor doubled.
    """
    if not delivery_claim(delivery_id=delivery_id):
        return "skipped"
    delivery = PushDelivery.objects.select_related(
        "subscription", "message__bam", "message__sender"
    ).get(pk=delivery_id)
    State = PushDelivery.State
    subscription = delivery.subscription
    if subscription is None:
        PushDelivery.objects.filter(pk=delivery_id).update(state=State.GONE)
        return State.GONE
    try:
        answer = subscription_send(
            subscription=subscription,
            payload=message_push_payload(
                delivery.message,
                mentioned=subscription.user_id
                in mentioned_ids(message_id=delivery.message_id),
            ),
            topic=bam_topic(delivery.message.bam_id),
        )
    except Exception:
        logger.exception("Push %s could not be sent", delivery_id)
        PushDelivery.objects.filter(pk=delivery_id).update(state=State.FAILED)
        failures["error"].inc()
        return State.FAILED
    status = answer.status
    fields = {"last_status": status, "updated_at": timezone.now()}
    reason = "refused"
    if not answer.allowed:  # nothing sent; kept, as the allow-list may change back
        state, reason = State.FAILED, "not_allowed"
    elif status is not None and 200 <= status < 300:
        state = State.SENT
    elif status in GONE_STATUSES:
        state, reason = State.GONE, "gone"
    elif status is None or status == 429 or status >= 500:
        delay = retry_delay_s(answer=answer, retries=delivery.retries)
        when = timezone.now() + timedelta(seconds=delay)
        expires = delivery.created_at + timedelta(seconds=settings.PUSH["TTL_S"])
        if when >= expires:
            state, reason = State.FAILED, "expired"
        else:
            with transaction.atomic():
                PushDelivery.objects.filter(pk=delivery_id).update(
                    state=State.PENDING,
                    next_attempt_at=when,
                    retries=F("retries") + 1,
                    **fields,
                )
                retry(delivery_id, when)
            logger.info(
                "Push %s deferred %.1fs (HTTP %s%s)",
                delivery_id,
                delay,
                status,
                f", {answer.error}" if answer.error else "",
            )
            return State.PENDING
    else:
        state = State.FAILED
    PushDelivery.objects.filter(pk=delivery_id).update(state=state, **fields)
    if state != State.SENT:
        failures[reason].inc()
    if state == State.FAILED:
        logger.warning("Push %s failed (HTTP %s %s)", delivery_id, status, answer.error)
    return state
