"""The garbage collector's thresholds in a server process that holds many sockets.

Every connected socket keeps a few hundred objects alive for as long as it is
connected. With Python's default thresholds (700, 10, 10) the youngest
generation is collected every 700 new objects, so objects that live a few
seconds (a ping's timer, a packet waiting in a socket's queue) survive into the
oldest generation, and a full collection walks every object of every socket:
at 5,000 idle sockets about a second of CPU each time, several times a minute.
A larger first threshold lets short-lived objects die young, so the oldest
generation grows, and is walked, far less often (``GC_THRESHOLDS``).
"""

import gc

from django.conf import settings


def apply_gc_thresholds() -> None:
    """Set this process's collector thresholds from ``settings.GC_THRESHOLDS``."""
    gc.set_threshold(*settings.GC_THRESHOLDS)
