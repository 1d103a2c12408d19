"""Writes on native app devices (FCM and APNs tokens): register, forget.

The same (platform, token) is the same device: registering it again updates it,
and a token another user registered moves to the caller (a phone changes hands,
or a user logs in as someone else: the newest login gets the pushes).
"""

import logging
import re

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction

from bamchat.errors import NotFound, invalid
from messaging import statements
from messaging.selectors import parse_id
from push.metrics import PUSH_DEVICES_REPLACED
from push.models import (
    APP_ID_MAX_CHARS,
    DEVICE_TOKEN_MAX_CHARS,
    LOCALE_MAX_CHARS,
    Platform,
    PushDevice,
)

logger = logging.getLogger(__name__)

# What each service's tokens are made of; anything else cannot be one, and the
# token becomes part of a request's URL (APNs) or body (FCM).
TOKEN_FORMATS = {
    Platform.FCM: re.compile(r"[A-Za-z0-9_:.-]+"),
    Platform.APNS: re.compile(r"(?:[0-9a-fA-F]{2}){32,100}"),
}
APP_ID = re.compile(r"[A-Za-z0-9_.-]+")
LOCALE = re.compile(r"[A-Za-z]{2,8}(?:[-_][A-Za-z0-9]{1,8})*")


def clean_device(*, platform, token, app_id, locale) -> tuple[str, str, str, str]:
    """``(platform, token, app_id, locale)`` checked and normalised, or an error."""
    if not isinstance(platform, str) or platform not in TOKEN_FORMATS:
        raise invalid("platform", 'platform must be "fcm" or "apns".')
    if (
        not isinstance(token, str)
        or len(token) > DEVICE_TOKEN_MAX_CHARS
        or not TOKEN_FORMATS[platform].fullmatch(token)
    ):
        what = (
            "hex digits" if platform == Platform.APNS else "an FCM registration token"
        )
        raise invalid("token", f"token must be the device token the OS gave ({what}).")
    if platform == Platform.APNS:
        token = token.lower()
    app_id = "" if app_id is None else app_id
    if not isinstance(app_id, str) or len(app_id) > APP_ID_MAX_CHARS:
        raise invalid("appId", "appId must be a package name or bundle id.")
    if app_id and not APP_ID.fullmatch(app_id):
        raise invalid("appId", "appId must be a package name or bundle id.")
    locale = "" if locale is None else locale
    if not isinstance(locale, str) or len(locale) > LOCALE_MAX_CHARS:
        raise invalid("locale", "locale must be a language tag such as en-GB.")
    if locale and not LOCALE.fullmatch(locale):
        raise invalid("locale", "locale must be a language tag such as en-GB.")
    return platform, token, app_id, locale


@transaction.atomic
def device_save(
    *, user, platform, token, app_id=None, locale=None
) -> tuple[PushDevice, bool]:
    """Register an app device for ``user``; the same token again is the same
    device, moved to ``user`` if another user had it."""
    platform, token, app_id, locale = clean_device(
        platform=platform, token=token, app_id=app_id, locale=locale
    )
    # One user's registrations take turns, so the device cap holds under races.
    list(get_user_model().objects.select_for_update().filter(pk=user.pk).values("pk"))
    device, created = PushDevice.objects.select_for_update().get_or_create(
        platform=platform,
        token=token,
        defaults={"user": user, "app_id": app_id, "locale": locale},
    )
    if not created:
        if device.user_id != user.pk:
            # The previous owner loses a device.
            statements.audience_changed(user_id=device.user_id)
            logger.info(
                "Push device %s moves from user %s to %s",
                device.pk,
                device.user_id,
                user.pk,
            )
        device.user = user
        device.app_id, device.locale = app_id, locale
        device.save()  # updated_at: this device's last registration
    app_devices_over_cap_delete(user=user)
    return device, created


def app_devices_over_cap_delete(*, user) -> int:
    """Delete the user's app devices past ``PUSH_MAX_DEVICES_PER_USER``, those
    registered longest ago first; how many went."""
    cap = settings.PUSH["MAX_DEVICES_PER_USER"]
    stale = list(
        PushDevice.objects.filter(user=user)
        .order_by("-updated_at", "-pk")
        .values_list("pk", flat=True)[cap:]
    )
    if stale:
        PushDevice.objects.filter(pk__in=stale).delete()
        PUSH_DEVICES_REPLACED.inc(len(stale))
    return len(stale)


@transaction.atomic
def device_delete(*, user, device_id) -> None:
    """Forget one of the user's own devices; NotFound for anyone else's."""
    pk = parse_id(device_id, what="device")
    deleted, _ = PushDevice.objects.filter(pk=pk, user=user).delete()
    if not deleted:
        raise NotFound("No such device.")
