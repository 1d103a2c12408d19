"""Heartbeat settings in the handshake's milliseconds."""

import pytest
from django.core.exceptions import ImproperlyConfigured

from realtime.heartbeat import HandshakeJson, heartbeat_ms


def test_seconds_become_exact_milliseconds():
    assert heartbeat_ms(2.5, setting="X") == 2500
    assert heartbeat_ms(0.3, setting="X") == 300
    assert heartbeat_ms(25, setting="X") == 25000


@pytest.mark.parametrize("seconds", [0, 0.0004, 1.0005, -1])
def test_what_the_handshake_cannot_announce_is_refused(seconds):
    with pytest.raises(ImproperlyConfigured, match="REALTIME_PING_INTERVAL_S"):
        heartbeat_ms(seconds, setting="REALTIME_PING_INTERVAL_S")


def test_only_the_handshake_is_rewritten():
    codec = HandshakeJson(interval_ms=2500, timeout_ms=300)
    opened = {"sid": "x", "upgrades": [], "pingInterval": 2000, "pingTimeout": 0}
    assert codec.loads(codec.dumps(opened))["pingInterval"] == 2500
    event = ["new-message", {"pingInterval": 1, "upgrades": 2}]
    assert codec.loads(codec.dumps(event)) == event
