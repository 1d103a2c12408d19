"""Writes on push subscriptions, mutes and deliveries: every push rule lives here.

A delivery is claimed with one conditional UPDATE (pending and due → sending), so
of two workers that race for it, one sends and the other does nothing: a push
goes to a device at most once per message. A worker that dies mid-request leaves
the delivery in ``sending``; it is not sent again.
"""

import logging
from datetime import timedelta
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
from push.apns import ApnsSender
from push.endpoints import clean_endpoint, clean_expiration, clean_keys, same_keys
from push.fcm import FcmSender
from push.metrics import PUSH_DEVICES_REPLACED, failures, outcomes
from push.models import (
    Platform,
    PushDelivery,
    PushDevice,
    PushSubscription,
)
from push.selectors import unread_total
from push.senders import Notification, Outcome, Result, Sender
from push.webpush import WebPushSender
from realtime.selectors import user_socket_count

logger = logging.getLogger(__name__)

# One sender per platform; each answers in ``push.senders`` terms.
SENDERS: dict[str, Sender] = {
    sender.platform: sender for sender in (WebPushSender(), FcmSender(), ApnsSender())
}


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


def message_notification(
    message: Message, *, badge: int | None = None, mentioned: bool = False
) -> Notification:
    """A message's push for every platform: the BAM's title (else the sender's
    name), the Web Push preview, the ids as strings, and ``type`` ``mention`` for
    a recipient the message mentions."""
    payload = message_push_payload(message, mentioned=mentioned)
    return Notification(
        title=message.bam.title or message.sender.username,
        body=payload["body"],
        collapse_id=bam_topic(message.bam_id),
        data={
            "type": payload["type"],
            "bamId": payload["bamId"],
            "messageId": payload["messageId"],
            "seq": str(message.seq),
        },
        web_payload=payload,
        badge=badge,
    )


def test_notification() -> Notification:
    """The admin's test push."""
    return Notification(
        title="BAM Chat",
        body="Push notifications reach this device.",
        collapse_id="test",
        data={"type": "test"},
        web_payload={
            "type": "test",
            "title": "BAM Chat",
            "body": "Push notifications reach this device.",
        },
    )


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
    sub, device, member = table(PushSubscription), table(PushDevice), table(Membership)
    sub_user, device_user = column(PushSubscription, "user"), column(PushDevice, "user")
    m_user, m_bam = column(Membership, "user"), column(Membership, "bam")
    return (
        f"SELECT 1 FROM {member} WHERE {member}.{m_bam} = %s "
        f"AND {member}.{column(Membership, 'muted')} = %s AND {member}.{m_user} <> %s "
        f"AND (EXISTS (SELECT 1 FROM {sub} WHERE {sub}.{sub_user} = {member}.{m_user})"
        f" OR EXISTS (SELECT 1 FROM {device} "
        f"WHERE {device}.{device_user} = {member}.{m_user})) LIMIT 1"
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
    """Create the deliveries of a message: each device (browser or app) of each
    participant but the sender who has not muted the BAM, or whom it mentions, and
    has no live socket on any process. With ``user_ids`` (mentioned by an edit),
    the devices of those of them the message mentions only."""
    message = Message.objects.filter(pk=message_id).first()
    if message is None:
        return []
    mentioned = mentioned_ids(message_id=message_id)
    wanted_users = Q(user__memberships__muted=False) | Q(user_id__in=mentioned)
    if user_ids is not None:
        wanted_users = Q(user_id__in=set(user_ids) & mentioned)
    # One filter call: the BAM and the mute are read from the same membership row.
    audience = Q(user__memberships__bam_id=message.bam_id) & wanted_users
    subscriptions = (
        PushSubscription.objects.filter(audience)
        .exclude(user_id=message.sender_id)
        .exclude(expiration__lte=timezone.now())
        .values_list("pk", "user_id")
    )
    devices = (
        PushDevice.objects.filter(audience)
        .exclude(user_id=message.sender_id)
        .values_list("pk", "user_id", "platform")
    )
    connected: dict[int, bool] = {}

    def offline(user_id: int) -> bool:
        if user_id not in connected:
            connected[user_id] = user_socket_count(user_id=user_id) > 0
        return not connected[user_id]

    wanted = [
        PushDelivery(subscription_id=pk, message_id=message_id)
        for pk, user_id in subscriptions
        if offline(user_id)
    ] + [
        PushDelivery(device_id=pk, platform=platform, message_id=message_id)
        for pk, user_id, platform in devices
        if offline(user_id)
    ]
    PushDelivery.objects.bulk_create(wanted, ignore_conflicts=True)
    targets = Q(
        subscription_id__in=[d.subscription_id for d in wanted if d.subscription_id]
    )
    targets |= Q(device_id__in=[d.device_id for d in wanted if d.device_id])
    return list(
        PushDelivery.objects.filter(
            targets, message_id=message_id, state=PushDelivery.State.PENDING, attempts=0
        )
        .order_by("pk")
        .values_list("pk", flat=True)
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


def retry_delay_s(*, outcome: Outcome, retries: int) -> float:
    """How long to wait before the next try: Retry-After if given, else back-off."""
    push = settings.PUSH
    if outcome.retry_after_s is not None:
        return min(outcome.retry_after_s, push["RETRY_MAX_S"])
    return min(push["RETRY_BASE_S"] * 2**retries, push["RETRY_MAX_S"])


def target_send(
    *, target: PushSubscription | PushDevice, notification: Notification
) -> Outcome:
    """Send one push with the target's platform's sender; a device the service
    calls gone is deleted."""
    platform = getattr(target, "platform", Platform.WEB)
    outcome = SENDERS[platform].send(target=target, notification=notification)
    outcomes(platform, outcome.result).inc()
    if outcome.result == Result.GONE:
        type(target).objects.filter(pk=target.pk).delete()
        kind = "subscription" if platform == Platform.WEB else f"{platform} device"
        logger.info(
            "Push %s %s gone (HTTP %s%s); deleted",
            kind,
            target.pk,
            outcome.status,
            f", {outcome.error}" if outcome.error else "",
        )
    return outcome


def delivery_send(*, delivery_id: int, retry) -> str:
    """Send a claimed-if-due delivery and record the outcome; its new state.

    ``retry(delivery_id, when)`` enqueues the next try; it runs in the same
    transaction as the state change, so a retry is never lost nor doubled.
    """
    if not delivery_claim(delivery_id=delivery_id):
        return "skipped"
    delivery = PushDelivery.objects.select_related(
        "subscription", "device", "message__bam", "message__sender"
    ).get(pk=delivery_id)
    State = PushDelivery.State
    target = delivery.subscription or delivery.device
    if target is None:
        PushDelivery.objects.filter(pk=delivery_id).update(state=State.GONE)
        return State.GONE
    try:
        badge = (
            None if delivery.device is None else unread_total(user_id=target.user_id)
        )
        mentioned = target.user_id in mentioned_ids(message_id=delivery.message_id)
        outcome = target_send(
            target=target,
            notification=message_notification(
                delivery.message, badge=badge, mentioned=mentioned
            ),
        )
    except Exception:
        logger.exception("Push %s could not be sent", delivery_id)
        PushDelivery.objects.filter(pk=delivery_id).update(state=State.FAILED)
        failures["error"].inc()
        return State.FAILED
    status = outcome.status
    fields = {"last_status": status, "updated_at": timezone.now()}
    reason = outcome.reason
    if outcome.result == Result.SENT:
        state = State.SENT
    elif outcome.result == Result.GONE:
        state, reason = State.GONE, "gone"
    elif outcome.result == Result.RETRY:
        delay = retry_delay_s(outcome=outcome, retries=delivery.retries)
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
                f", {outcome.error}" if outcome.error else "",
            )
            return State.PENDING
    else:
        state = State.FAILED
    PushDelivery.objects.filter(pk=delivery_id).update(state=state, **fields)
    if state != State.SENT:
        failures[reason].inc()
    if state == State.FAILED:
        logger.warning(
            "Push %s failed (HTTP %s %s)", delivery_id, status, outcome.error
        )
    return state
