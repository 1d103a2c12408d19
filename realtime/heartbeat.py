"""The Engine.IO heartbeat as clients are told it: exactly what is configured.

python-engineio announces ``pingInterval`` in the handshake as
``int(seconds) * 1000``: a configured 2.5 s is announced as 2000 ms (0.3 s as 0),
and clients would time out on another clock than the server's. It has no
setting for this. Its public ``json`` option (the module packets are encoded
with) is the one place that sees the handshake, so ``HandshakeJson`` encodes
like the library's own module and writes the handshake's two numbers exactly.
"""

from django.core.exceptions import ImproperlyConfigured
from engineio import json as engine_json


def heartbeat_ms(seconds: float, *, setting: str) -> int:
    """A heartbeat setting in the milliseconds the handshake announces."""
    ms = round(seconds * 1000)
    if ms < 1 or abs(ms - seconds * 1000) > 1e-6:
        raise ImproperlyConfigured(
            f"{setting}={seconds}: the handshake announces it in whole "
            "milliseconds; use a positive number of seconds with at most three "
            "decimals (e.g. 2.5)."
        )
    return ms


class HandshakeJson:
    """python-engineio's JSON module, except that the handshake (the OPEN
    packet's dict) announces the configured interval and timeout exactly."""

    def __init__(self, *, interval_ms: int, timeout_ms: int) -> None:
        self.announced = {"pingInterval": interval_ms, "pingTimeout": timeout_ms}

    def loads(self, *args, **kwargs):
        return engine_json.loads(*args, **kwargs)

    def dumps(self, obj, *args, **kwargs):
        if isinstance(obj, dict) and "pingInterval" in obj and "upgrades" in obj:
            obj = {**obj, **self.announced}
        return engine_json.dumps(obj, *args, **kwargs)
