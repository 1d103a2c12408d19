"""This server's VAPID identity (RFC 8292): from the environment, or generated once."""

import functools
import logging

from cryptography.hazmat.primitives import serialization
from django.conf import settings
from django.db import IntegrityError, transaction
from py_vapid import Vapid

from push.endpoints import b64url_encode
from push.models import VapidKey

logger = logging.getLogger(__name__)


def _stored_key() -> str:
    """The kept private key (PEM), generating and storing it the first time."""
    row = VapidKey.objects.filter(pk=1).first()
    if row is not None:
        return row.private_pem
    generated = Vapid()
    generated.generate_keys()
    pem = generated.private_pem().decode("ascii")
    try:
        with transaction.atomic():
            VapidKey.objects.create(pk=1, private_pem=pem)
        logger.info(
            "Generated the VAPID key pair (set PUSH_VAPID_PRIVATE_KEY to fix it)"
        )
    except IntegrityError:
        pass  # another process stored one first: use that one
    return VapidKey.objects.get(pk=1).private_pem


@functools.cache
def vapid_identity() -> Vapid:
    """The VAPID key pair that signs every push of this deployment."""
    configured = settings.PUSH["VAPID_PRIVATE_KEY"].strip()
    if configured.startswith("-----BEGIN"):
        return Vapid.from_pem(configured.encode("ascii"))
    if configured:
        return Vapid.from_string(configured)  # base64url of the DER or raw key
    return Vapid.from_pem(_stored_key().encode("ascii"))


def vapid_public_key() -> str:
    """The public key as browsers take it: base64url of the uncompressed P-256 point."""
    raw = vapid_identity().public_key.public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    return b64url_encode(raw)
