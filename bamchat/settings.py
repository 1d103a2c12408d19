"""BAM Chat settings: everything comes from the environment, with embedded defaults.

No environment at all gives the embedded default (SQLite file + in-memory channel
layer, one process). ``DATABASE_URL`` and ``REDIS_URL`` switch to PostgreSQL and
the Redis channel layer (``realtime.layer``) for a multi-process deployment.
"""

import os
from datetime import timedelta
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


from bamchat.environment import (  # noqa: E402
    databases_from_env,
    env_float,
    env_int,
    env_ints,
    env_list,
)

DEBUG = os.environ.get("DJANGO_DEBUG", "0") == "1"

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "DJANGO_SECRET_KEY is required when DJANGO_DEBUG is not 1. "
            "Set it to a long random string (python -c 'import secrets; "
            "print(secrets.token_urlsafe(50))')."
        )
    # Only ever used with DJANGO_DEBUG=1 on a developer's machine.
    SECRET_KEY = "bamchat-insecure-development-key-do-not-use-in-production"

ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost")

# Addresses/CIDRs of the reverse proxies in front of daphne. X-Forwarded-For is
# believed only from these peers (bamchat.clientaddr); unset, the TCP peer is the
# client. Do not run daphne with --proxy-headers: it trusts the header's leftmost
# entry from any peer.
TRUSTED_PROXIES = env_list("TRUSTED_PROXIES")

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "corsheaders",
    "rest_framework",
    "rest_framework_simplejwt.token_blacklist",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "channels",
    "bamchat",
    "accounts",
    "messaging",
    "realtime",
    "django_tasks",
    "django_tasks_db",
    "push",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "corsheaders.middleware.CorsMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "bamchat.urls"
ASGI_APPLICATION = "bamchat.asgi.application"
AUTH_USER_MODEL = "accounts.User"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database -----------------------------------------------------------------
DATABASES = databases_from_env(BASE_DIR)

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Channel layer and cache ----------------------------------------------------
REDIS_URL = os.environ.get("REDIS_URL", "")
# Room for bursts: a full channel drops group messages, so keep it well above any
# realistic backlog between two reads of the per-process listener.
CHANNEL_CAPACITY = env_int("CHANNEL_CAPACITY", 100_000)
# Measured with bench/channel_layers.py: pub/sub (ours, realtime.layer) delivers
# ~7x more events per second with lower latency than channels-redis's list-based
# core layer (README, "Channel layer").
CHANNEL_LAYER_BACKEND = os.environ.get("CHANNEL_LAYER_BACKEND", "pubsub")
if REDIS_URL:
    if CHANNEL_LAYER_BACKEND == "pubsub":
        CHANNEL_LAYERS = {
            "default": {
                "BACKEND": "realtime.layer.RedisPubSubLayer",
                "CONFIG": {
                    "hosts": [REDIS_URL],
                    # How long Redis may leave the layer without an answer before
                    # a publish fails and a silent subscribing connection is
                    # replaced (realtime.redispubsub.ANSWER_TIMEOUT_S).
                    "answer_timeout_s": env_float("REDIS_ANSWER_TIMEOUT_S", 10),
                },
            }
        }
    elif CHANNEL_LAYER_BACKEND == "core":
        CHANNEL_LAYERS = {
            "default": {
                "BACKEND": "channels_redis.core.RedisChannelLayer",
                "CONFIG": {
                    "hosts": [REDIS_URL],
                    "capacity": CHANNEL_CAPACITY,
                    "expiry": 60,
                    "group_expiry": 86400,
                },
            }
        }
    else:
        raise ImproperlyConfigured(
            f"CHANNEL_LAYER_BACKEND must be 'core' or 'pubsub', "
            f"got {CHANNEL_LAYER_BACKEND!r}."
        )
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "bamchat",
        }
    }
else:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels.layers.InMemoryChannelLayer",
            "CONFIG": {"capacity": CHANNEL_CAPACITY, "expiry": 60},
        }
    }
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# --- Auth -------------------------------------------------------------------------
# One backend, behind the failed-login limiter: it guards every login door.
AUTHENTICATION_BACKENDS = ["accounts.backends.LoginLimitedBackend"]

AUTH_PASSWORD_VALIDATORS = [
    {
        "NAME": "django.contrib.auth.password_validation."
        "UserAttributeSimilarityValidator"
    },
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": timedelta(minutes=env_int("JWT_ACCESS_MINUTES", 15)),
    "REFRESH_TOKEN_LIFETIME": timedelta(days=env_int("JWT_REFRESH_DAYS", 7)),
    "AUTH_HEADER_TYPES": ("Bearer",),
    "UPDATE_LAST_LOGIN": False,
    # A refresh hands out a new refresh token and blacklists the old one, so a
    # stolen refresh token stops working once either party uses it.
    "ROTATE_REFRESH_TOKENS": True,
    "BLACKLIST_AFTER_ROTATION": True,
}

# --- REST -------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.authentication.RevocableJWTAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
    "DEFAULT_PARSER_CLASSES": [
        "bamchat.parsers.DepthLimitedJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "bamchat.errors.exception_handler",
    "DEFAULT_THROTTLE_CLASSES": ["bamchat.throttles.WriteRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {
        "rest_write": os.environ.get("REST_WRITE_RATE", "300/min"),
        "register": os.environ.get("REGISTER_RATE", "60/min"),
        "upload": os.environ.get("UPLOAD_RATE", "60/min"),
    },
}

# Failed logins allowed per window (count, seconds); successful logins never count.
LOGIN_FAILURE_LIMITS = {
    "username": (env_int("LOGIN_FAILURES_PER_USERNAME", 10), 300),
    "address": (env_int("LOGIN_FAILURES_PER_ADDRESS", 50), 300),
}

SPECTACULAR_SETTINGS = {
    "TITLE": "BAM Chat API",
    "DESCRIPTION": "REST side of BAM Chat; realtime events travel over Socket.IO.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    # Swagger UI comes from this project's static files, not a CDN: docs work
    # offline and no third-party script runs on the API's origin.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Paths as clients write them, closed response shapes, error bodies, and
    # the Socket.IO shapes the AsyncAPI document shares (bamchat.openapi).
    "PREPROCESSING_HOOKS": ["bamchat.openapi.paths_without_trailing_slash"],
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "bamchat.openapi.contract_components",
    ],
}

# --- CORS ---------------------------------------------------------------------------
CORS_ALLOWED_ORIGINS = env_list("CORS_ALLOWED_ORIGINS")
CORS_ALLOW_CREDENTIALS = True
CSRF_TRUSTED_ORIGINS = CORS_ALLOWED_ORIGINS

# --- Realtime -------------------------------------------------------------------------
REALTIME = {
    # Engine.IO refuses a packet larger than this (bytes); the socket is closed.
    "MAX_PAYLOAD_BYTES": env_int("REALTIME_MAX_PAYLOAD_BYTES", 64 * 1024),
    # Bytes a WebSocket client may leave unread in the server's buffer (beyond the
    # kernel's); past it the connection is closed and the client catches up on
    # reconnect. 4 MiB is seconds of the busiest BAMs for a slow phone, and caps
    # what a client that never reads can cost (realtime.daphne_ws).
    "OUTPUT_BUDGET_BYTES": env_int("REALTIME_OUTPUT_BUDGET_BYTES", 4 * 1024 * 1024),
    # Sockets one user may hold on one process (tabs, devices, reconnects not yet
    # noticed as gone); more are refused with ``rate_limited``. A socket costs
    # about 50 KB, so this bounds what one account can hold on a process.
    "MAX_SOCKETS_PER_USER": env_int("REALTIME_MAX_SOCKETS_PER_USER", 50),
    # A join's replay sends at most this many bytes (and REPLAY_LIMIT events); the
    # ack then says ``truncated`` and the client reads the rest over REST.
    "REPLAY_MAX_BYTES": env_int("REALTIME_REPLAY_MAX_BYTES", 1024 * 1024),
    # Engine.IO heartbeat: a ping every interval; no pong within the timeout closes.
    "PING_INTERVAL_S": env_float("REALTIME_PING_INTERVAL_S", 25),
    "PING_TIMEOUT_S": env_float("REALTIME_PING_TIMEOUT_S", 20),
    # A user whose last socket went is offline after this long unless they are
    # back (a reload, a hop to another process); the contract allows up to 5 s.
    "PRESENCE_GRACE_S": env_float("REALTIME_PRESENCE_GRACE_S", 2),
    # New Socket.IO sessions are refused (503, clients retry after their back-off)
    # while the event loop runs this late: in a connect storm, work a client
    # would give up on (its handshake times out) is not taken on.
    "SHED_LAG_S": env_float("REALTIME_SHED_LAG_S", 1.0),
    # Clients renew typing every ~3 s; silence for this long means they stopped.
    "TYPING_TTL_S": 5,
    # A process that has not beaten for this long is dead; survivors reap it.
    "HEARTBEAT_INTERVAL_S": env_float("REALTIME_HEARTBEAT_INTERVAL_S", 10),
    "PROCESS_DEAD_AFTER_S": env_float("REALTIME_PROCESS_DEAD_AFTER_S", 30),
    # Token bucket per user and action: (burst, refill per second).
    "RATE_LIMITS": {
        "send-message": (env_int("RATE_SEND_BURST", 20), env_int("RATE_SEND_PER_S", 5)),
        "typing": (env_int("RATE_TYPING_BURST", 20), env_int("RATE_TYPING_PER_S", 5)),
        "join-bam": (env_int("RATE_JOIN_BURST", 30), env_int("RATE_JOIN_PER_S", 10)),
        "status-change": (10, 2),
        "edit-message": (env_int("RATE_EDIT_BURST", 20), env_int("RATE_EDIT_PER_S", 2)),
        "react": (env_int("RATE_REACT_BURST", 30), env_int("RATE_REACT_PER_S", 5)),
        "mark-read": (env_int("RATE_READ_BURST", 30), env_int("RATE_READ_PER_S", 10)),
    },
}

# The garbage collector of a server process (bamchat.gc_tuning).
GC_THRESHOLDS = env_ints("GC_THRESHOLDS", "50000,20,100", count=3)

# --- Metrics --------------------------------------------------------------------------
# ``GET /metrics`` answers staff, and a scraper sending ``Authorization: Bearer`` with
# this token when it is set.
METRICS_TOKEN = os.environ.get("METRICS_TOKEN", "")
if METRICS_TOKEN and len(METRICS_TOKEN) < 16:
    raise ImproperlyConfigured(
        "METRICS_TOKEN is set but shorter than 16 characters. Use a long random "
        "string (python -c 'import secrets; print(secrets.token_urlsafe(32))')."
    )

# --- Task queue -----------------------------------------------------------------------
# django-tasks on its database backend: tasks are rows in the project's database, so
# they survive a restart and any number of `manage.py db_worker` processes, on any
# machine, share them. Every app enqueues on the one "default" queue.
TASKS = {
    "default": {
        "BACKEND": os.environ.get("TASKS_BACKEND", "django_tasks_db.DatabaseBackend"),
        "QUEUES": ["default"],
    }
}
# Each server process also runs a worker in a thread (bamchat.tasks), so the embedded
# default needs no extra process; set 0 where dedicated db_worker processes run.
TASKS_IN_PROCESS_WORKER = os.environ.get("TASKS_IN_PROCESS_WORKER", "1") == "1"
# An idle worker looks for due tasks this often (seconds).
TASKS_WORKER_INTERVAL_S = env_float("TASKS_WORKER_INTERVAL_S", 1)
# A run ending on a transient database error (a lock, a dropped connection, a
# serialization failure or deadlock) runs again this many times at most, the first
# after this many seconds, each wait doubled (bamchat.tasks).
TASKS_TRANSIENT_RETRIES = env_int("TASKS_TRANSIENT_RETRIES", 5)
TASKS_TRANSIENT_RETRY_BASE_S = env_float("TASKS_TRANSIENT_RETRY_BASE_S", 1)

# --- Push notifications and search: bamchat/settings_push_search.py ------------------
from bamchat.settings_push_search import APNS, FCM, PUSH, SEARCH  # noqa: E402,F401

# --- Attachments ----------------------------------------------------------------------
# Largest upload (bytes): over it the upload is refused with 413 ``too_large``, the
# body read no further (messaging.uploads, bamchat.bodylimit).
ATTACHMENT_MAX_BYTES = env_int("ATTACHMENT_MAX_BYTES", 25 * 1024 * 1024)
# Bytes of one user's uploads not yet in a message (they are kept 24 h): over it an
# upload is refused with 413 ``too_large``. Eight full-size uploads; at the upload
# rate alone a user could otherwise hold 60 x 25 MiB a minute for a day.
ATTACHMENT_QUOTA_BYTES = env_int("ATTACHMENT_QUOTA_BYTES", 200 * 1024 * 1024)
# Most pixels an uploaded image may decode to, all frames counted: more is refused
# (400 on ``file``, before any decoding). A pixel takes up to 4 bytes once decoded,
# so a decode at the limit holds about 100-200 MB; 25 Mpx takes a 24 Mpx camera's
# photo (6000 x 4000). Pillow's own bomb check (89.5 Mpx) caps a higher setting.
ATTACHMENT_MAX_IMAGE_PIXELS = env_int("ATTACHMENT_MAX_IMAGE_PIXELS", 25_000_000)
# Images decoded at once per process (each up to the budget above); further
# uploads wait for a free slot.
ATTACHMENT_MAX_DECODES = env_int("ATTACHMENT_MAX_DECODES", 2)
if ATTACHMENT_MAX_DECODES < 1:
    raise ImproperlyConfigured(
        f"ATTACHMENT_MAX_DECODES must be at least 1, got {ATTACHMENT_MAX_DECODES}."
    )
# Largest request body (bytes) of a request with credentials (an Authorization
# header or the session cookie), on any path: uploads are the biggest legitimate
# bodies. Without credentials: logins and registrations are tiny, and a Socket.IO
# long-polling POST is at most REALTIME_MAX_PAYLOAD_BYTES. Over either, 413
# ``too_large``, under daphne before the body is read (bamchat.bodylimit).
HTTP_MAX_BODY_BYTES = env_int("HTTP_MAX_BODY_BYTES", ATTACHMENT_MAX_BYTES + 1024 * 1024)
HTTP_MAX_ANONYMOUS_BODY_BYTES = env_int("HTTP_MAX_ANONYMOUS_BODY_BYTES", 1024 * 1024)
if HTTP_MAX_ANONYMOUS_BODY_BYTES < REALTIME["MAX_PAYLOAD_BYTES"]:
    raise ImproperlyConfigured(
        "HTTP_MAX_ANONYMOUS_BODY_BYTES is below REALTIME_MAX_PAYLOAD_BYTES, so "
        "Socket.IO long-polling clients (whose requests carry no credentials) would "
        "be refused; raise it to at least that."
    )
# Lifetime of the signed ``url``/``thumbnailUrl`` in payloads.
ATTACHMENT_URL_TTL_S = env_int("ATTACHMENT_URL_TTL_S", 3600)
# Prefix of those URLs, e.g. https://chat.example.com; empty gives paths
# (/attachments/1?sig=...) that clients resolve against the server's origin.
ATTACHMENT_URL_BASE = os.environ.get("ATTACHMENT_URL_BASE", "").rstrip("/")
FILE_UPLOAD_HANDLERS = [
    "messaging.uploads.SizeLimitUploadHandler",
    "django.core.files.uploadhandler.MemoryFileUploadHandler",  # small files
    "django.core.files.uploadhandler.TemporaryFileUploadHandler",  # the rest: disk
]
MEDIA_ROOT = os.environ.get("MEDIA_ROOT", str(BASE_DIR / "media"))
# S3_BUCKET switches the file storage to an S3-compatible bucket (django-storages);
# credentials come from S3_ACCESS_KEY_ID/S3_SECRET_ACCESS_KEY or boto3's own chain.
S3_BUCKET = os.environ.get("S3_BUCKET", "")
if S3_BUCKET:
    DEFAULT_FILE_STORAGE_SETTINGS = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": S3_BUCKET,
            "endpoint_url": os.environ.get("S3_ENDPOINT_URL") or None,
            "region_name": os.environ.get("S3_REGION") or None,
            "access_key": os.environ.get("S3_ACCESS_KEY_ID") or None,
            "secret_key": os.environ.get("S3_SECRET_ACCESS_KEY") or None,
            "location": os.environ.get("S3_PREFIX", ""),
            "default_acl": None,  # private objects: downloads go through our URLs
            "file_overwrite": False,
            "querystring_auth": True,
        },
    }
else:
    DEFAULT_FILE_STORAGE_SETTINGS = {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": MEDIA_ROOT},
    }
STORAGES = {
    "default": DEFAULT_FILE_STORAGE_SETTINGS,
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

# --- I18N / static ------------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
STATIC_ROOT = os.environ.get("STATIC_ROOT") or None  # only for collectstatic
# Admin and API-browser assets are served by WhiteNoise from the apps' static
# folders, so daphne alone serves a complete site without a collectstatic step.
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}
    },
    # Access lines carry URIs; their query strings (tokens, Engine.IO sids) are
    # redacted here for runserver and by bamchat.logs for the daphne command.
    "filters": {"redact_query": {"()": "bamchat.logs.AccessLogQueryFilter"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {
        "django.channels.server": {"level": "WARNING", "filters": ["redact_query"]},
        "engineio": {"level": "WARNING"},
        "socketio": {"level": "WARNING"},
        # One line per task run is noise; failures still show.
        "django_tasks": {"level": "WARNING"},
        "django_tasks_db": {"level": "WARNING"},
    },
}
