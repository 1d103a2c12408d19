"""The Socket.IO packet this server reads and writes: JSON only.

The contract has no binary events (``BamSocketServer`` refuses a client's binary
packets unread), so no payload this server sends holds bytes. python-socketio's
``Packet`` still walks every payload it is given, item by item, looking for
bytes to send as attachments, and the walk cost more than the encoding itself:
12 → 5 µs for a ``new-message``, paid for every event on every process and for
every ack. ``JsonPacket`` is the library's packet without that walk, given to
the server through python-socketio's public ``serializer`` argument (a subclass
of ``Packet``); its ``uses_binary_events`` is the switch the library's own
msgpack packet turns off. Decoding is unchanged: a client's binary packet is
still read as one, and refused.
"""

from socketio import packet


class JsonPacket(packet.Packet):
    """A Socket.IO packet whose payload is JSON, never bytes."""

    uses_binary_events = False
