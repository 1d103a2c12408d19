"""Settings of push notifications (Web Push, FCM, APNs) and of message search,
from the environment; ``bamchat.settings`` imports them."""

import os
import re

from django.core.exceptions import ImproperlyConfigured

from bamchat.environment import env_float, env_int, env_list

# --- Push notifications -------------------------------------------------------------
PUSH = {
    # PEM, or base64url DER/raw, of the VAPID P-256 private key; unset, a key is
    # generated once and kept in the database (push.vapid).
    "VAPID_PRIVATE_KEY": os.environ.get("PUSH_VAPID_PRIVATE_KEY", ""),
    "VAPID_SUBJECT": os.environ.get("PUSH_VAPID_SUBJECT", "mailto:admin@localhost"),
    # Hosts (a leading "*." allows subdomains) reached over https, or exact origins
    # such as http://127.0.0.1:9123 for a local test service.
    "ALLOWED_HOSTS": env_list(
        "PUSH_ALLOWED_HOSTS",
        "fcm.googleapis.com,updates.push.services.mozilla.com,"
        "web.push.apple.com,*.notify.windows.com",
    ),
    # How long a push service may hold an undelivered push; retries stop after it.
    "TTL_S": env_int("PUSH_TTL_S", 86400),
    # One push request's whole deadline (connect, TLS, send, the entire answer):
    # past it the request is cut off and the push retried.
    "REQUEST_TIMEOUT_S": env_float("PUSH_REQUEST_TIMEOUT_S", 10),
    # Back-off without Retry-After: first wait, doubled per retry, capped.
    "RETRY_BASE_S": env_float("PUSH_RETRY_BASE_S", 1),
    "RETRY_MAX_S": env_float("PUSH_RETRY_MAX_S", 600),
    # Devices one user may register; a new one past it replaces the one whose last
    # registration is oldest (so a message makes at most this many pushes per user).
    "MAX_DEVICES_PER_USER": env_int("PUSH_MAX_DEVICES_PER_USER", 20),
    # An extra CA bundle (PEM) trusted for FCM and APNs besides the usual ones.
    "CA_FILE": os.environ.get("PUSH_CA_FILE", ""),
}
# Firebase Cloud Messaging (HTTP v1): a service account's JSON key, as a file or
# as the JSON itself; neither set, FCM is off and FCM devices get no push.
FCM = {
    "CREDENTIALS_FILE": os.environ.get("FCM_CREDENTIALS_FILE", ""),
    "CREDENTIALS_JSON": os.environ.get("FCM_CREDENTIALS_JSON", ""),
    "API_URL": os.environ.get("FCM_API_URL", "https://fcm.googleapis.com").rstrip("/"),
}
# APNs token-based auth: the .p8 key, its id, the team id and the app's bundle id;
# any of them unset, APNs is off and iOS devices get no push.
APNS = {
    "KEY_FILE": os.environ.get("APNS_KEY_FILE", ""),
    "KEY_ID": os.environ.get("APNS_KEY_ID", ""),
    "TEAM_ID": os.environ.get("APNS_TEAM_ID", ""),
    "TOPIC": os.environ.get("APNS_TOPIC", ""),
    "HOST": os.environ.get("APNS_HOST", "")
    or (
        "api.sandbox.push.apple.com"
        if os.environ.get("APNS_USE_SANDBOX", "") == "1"
        else "api.push.apple.com"
    ),
}
if PUSH["MAX_DEVICES_PER_USER"] < 1:
    raise ImproperlyConfigured(
        "PUSH_MAX_DEVICES_PER_USER must be at least 1, got "
        f"{PUSH['MAX_DEVICES_PER_USER']}."
    )

# --- Search ---------------------------------------------------------------------------
SEARCH = {
    # PostgreSQL text-search configuration of the stored tsvector and of queries
    # ("simple" works for every language; "french", "english" ... stem). Read by the
    # migration that builds the index: rebuild with ``manage.py search_reindex``.
    "CONFIG": os.environ.get("SEARCH_CONFIG", "simple"),
    # One search's statement deadline; past it the search is refused (400).
    "TIMEOUT_MS": env_int("SEARCH_TIMEOUT_MS", 2000),
    # Words (phrase words included) in one query at most.
    "MAX_TERMS": env_int("SEARCH_MAX_TERMS", 8),
}
if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", SEARCH["CONFIG"]):
    raise ImproperlyConfigured(
        f"SEARCH_CONFIG must name a PostgreSQL text-search configuration such as "
        f"'simple' or 'french', got {SEARCH['CONFIG']!r}."
    )
