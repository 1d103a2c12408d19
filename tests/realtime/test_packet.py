"""The Socket.IO packet the server reads and writes (realtime.packet): JSON only."""

from socketio import packet

from realtime.packet import JsonPacket
from realtime.server import sio


class Unwalkable(dict):
    """A payload that fails when searched item by item for bytes (what
    python-socketio's packet does with ``values()``); JSON encodes it whole."""

    def values(self):
        raise AssertionError("the payload was searched for bytes")


MESSAGE = {
    "id": "12",
    "bamId": "3",
    "sender": {"id": "7", "username": "zoé"},
    "content": "salut 👋",
    "mentions": ["8", "9"],
    "replyTo": None,
    "seq": 41,
}


def test_the_server_sends_events_and_acks_without_searching_them_for_bytes():
    event = sio.packet_class(
        packet.EVENT, namespace="/", data=["new-message", Unwalkable(MESSAGE)]
    )
    ack = sio.packet_class(packet.ACK, namespace="/", id=4, data=[Unwalkable(ok=1)])
    assert (
        event.encode()
        == packet.Packet(
            packet.EVENT, namespace="/", data=["new-message", MESSAGE]
        ).encode()
    )
    assert ack.encode() == '34[{"ok":1}]'


def test_what_a_client_sends_is_read_as_before():
    for wire in ('2["send-message",{"bamId":"3"}]', '21["x"]', "2/chat,5[1]"):
        mine, theirs = (
            JsonPacket(encoded_packet=wire),
            packet.Packet(encoded_packet=wire),
        )
        assert (mine.packet_type, mine.namespace, mine.id, mine.data) == (
            theirs.packet_type,
            theirs.namespace,
            theirs.id,
            theirs.data,
        )
    # A binary event stays one, so the server refuses it (tests/realtime/test_protocol).
    binary = JsonPacket(encoded_packet='51-["x",{"_placeholder":true,"num":0}]')
    assert binary.packet_type == packet.BINARY_EVENT
    assert binary.attachment_count == 1
