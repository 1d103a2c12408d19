"""What the server changes in daphne's WebSocket protocol for every frame."""

from autobahn.util import hltype, hlval


def test_autobahn_formats_the_values_of_its_debug_lines_without_colours():
    """autobahn formats these for every frame it sends, debug on or off; the
    server has them built as plain text (realtime.daphne_ws)."""

    class Protocol:
        def sendData(self):
            pass

    assert hlval(42) == "42"
    assert hltype(Protocol().sendData) == (
        "<tests.realtime.test_daphne_ws."
        "test_autobahn_formats_the_values_of_its_debug_lines_without_colours."
        "<locals>.Protocol.sendData>"
    )
