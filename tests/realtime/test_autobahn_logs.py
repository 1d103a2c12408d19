"""autobahn's per-connection debug text is formatted cheaply under daphne."""

import pprint
import sys

import autobahn.websocket.protocol as protocol

from realtime.autobahn_logs import cheap_autobahn_debug_text


def test_swaps_pformat_for_repr_once(monkeypatch):
    monkeypatch.setattr(protocol, "pformat", pprint.pformat)
    assert cheap_autobahn_debug_text() is True
    assert protocol.pformat is repr
    assert cheap_autobahn_debug_text() is True  # idempotent
    settings = [("openHandshakeTimeout", 5, "Factory")] * 3
    assert protocol.pformat(settings) == repr(settings)


def test_leaves_other_servers_alone(monkeypatch):
    monkeypatch.delitem(sys.modules, protocol.__name__)
    assert cheap_autobahn_debug_text() is False
