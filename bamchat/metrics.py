"""Figures every layer may record, served by ``GET /metrics`` (``bamchat.views``).

Each process keeps its own figures in prometheus-client's default registry, which
also carries the process's own (``process_*``, ``python_gc_*``). Apps define their
series next to the code they watch (``realtime.metrics``, ``push.metrics``); this
module holds what more than one app records and the helpers they share.
"""

from prometheus_client import REGISTRY, Histogram, disable_created_metrics
from prometheus_client.exposition import choose_encoder

# A ``*_created`` series per counter and histogram doubles the page and is not
# used by Prometheus's text format.
disable_created_metrics()

# Storing a message is a few queries in one transaction: milliseconds, seconds
# only when the database struggles.
WRITE_BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5)

MESSAGE_WRITE_SECONDS = Histogram(
    "bamchat_message_write_seconds",
    "Time to store a new message (checks, insert, commit), REST and Socket.IO alike.",
    buckets=WRITE_BUCKETS_S,
)


def exposition(accept: str) -> tuple[bytes, str]:
    """This process's figures in the format ``accept`` asks for, and its type."""
    encode, content_type = choose_encoder(accept)
    return encode(REGISTRY), content_type
