"""What the server changes in daphne's WebSocket protocol for every frame."""

import socket

import pytest
from autobahn.util import hltype, hlval
from twisted.internet import tcp
from twisted.internet.protocol import Protocol
from twisted.internet.selectreactor import SelectReactor


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


# -- the server's TCP connections write at once when nothing is waiting -------------


@pytest.fixture
def connection():
    """A server-side TCP connection of the kind daphne's port accepts, over one
    end of a socket pair, with a reactor that never runs: whatever reaches the
    peer got there without waiting for the reactor's next turn."""
    local, peer = socket.socketpair()
    peer.setblocking(False)
    reactor = SelectReactor()
    transport = tcp.Port.transport(
        local, Protocol(), ("127.0.0.1", 1), None, 0, reactor
    )
    transport.protocol.makeConnection(transport)
    yield transport, peer, reactor
    peer.close()
    local.close()


def read_all(peer, *, flush=None, expected: int) -> bytes:
    """What the peer receives, up to ``expected`` bytes; ``flush`` is called
    whenever nothing is readable (the reactor's turn, done by hand)."""
    received = bytearray()
    for _ in range(100_000):
        try:
            chunk = peer.recv(1 << 20)
        except BlockingIOError:
            if flush is None:
                break
            flush()
            continue
        received += chunk
        if len(received) >= expected:
            break
    return bytes(received)


def test_a_write_on_an_idle_connection_is_sent_at_once(connection):
    transport, peer, reactor = connection
    transport.write(b"frame")
    assert read_all(peer, expected=5) == b"frame", "the frame waited for the reactor"
    assert transport not in reactor.getWriters(), "nothing left for the reactor"


def test_writes_stay_in_order_when_the_socket_buffer_is_full(connection):
    transport, peer, reactor = connection
    big = bytes(range(256)) * (16 * 1024)  # 4 MB: more than a socket buffer holds
    transport.write(big)
    assert transport in reactor.getWriters(), "the rest waits for the reactor"
    transport.write(b"tail")  # must not overtake what waits
    received = read_all(peer, flush=transport.doWrite, expected=len(big) + 4)
    assert received == big + b"tail"
    assert transport not in reactor.getWriters()
    transport.write(b"again")  # drained: straight to the socket again
    assert read_all(peer, expected=5) == b"again"


def test_nothing_is_written_after_an_abort(connection):
    transport, peer, _ = connection
    transport.write(b"before")
    transport.abortConnection()
    transport.write(b"after")
    assert read_all(peer, expected=11) == b"before"
