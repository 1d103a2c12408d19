"""daphne's WebSocket protocol with an output budget per connection.

daphne hands every frame the application sends to Twisted, which keeps what the
client has not read yet in the connection's write buffer, without limit: a
client that stops reading (or reads slower than its BAMs talk) grows the process
by everything sent to it. Twisted's producer interface is how a transport says
"my buffer is full" (``pauseProducing``) and "drained" (``resumeProducing``);
this protocol registers itself as its transport's producer, counts the bytes it
hands over while paused, and closes a connection whose backlog passes
``REALTIME_OUTPUT_BUDGET_BYTES`` (its buffer is dropped with it). The client
reconnects and catches up with ``sinceSeq``, in pages.

daphne has no setting for this and builds its protocols from the public
``protocol`` attribute of its factory, the way every Twisted factory chooses its
protocol class; ``install_output_budget`` sets that one attribute.

``install_prompt_writes`` has the server's TCP connections send a write at
once when nothing of theirs waits to be sent (below).

``plain_autobahn_log_values`` takes the colours out of the values autobahn
formats for its debug lines, which it does for every frame it sends.
"""

import logging

from django.conf import settings
from twisted.internet import tcp
from twisted.internet.interfaces import IPushProducer
from zope.interface import implementer

from realtime.metrics import OUTPUT_OVERFLOWS

logger = logging.getLogger(__name__)


@implementer(IPushProducer)
class _Backlog:
    """What the transport says of its buffer: full (paused) or drained."""

    def __init__(self) -> None:
        self.paused = False
        self.bytes = 0  # handed over since the buffer was last found full

    def pauseProducing(self) -> None:
        self.paused = True

    def resumeProducing(self) -> None:
        self.paused = False
        self.bytes = 0

    def stopProducing(self) -> None:
        self.paused = False
        self.bytes = 0


def budgeted_protocol(base):
    """A subclass of daphne's WebSocket protocol that enforces the budget."""

    class BudgetedWebSocketProtocol(base):
        backlog: _Backlog | None = None

        def connectionMade(self):
            super().connectionMade()
            self.backlog = _Backlog()
            # The transport still reports to the HTTP channel that received the
            # upgrade request; this connection is a WebSocket's now.
            self.transport.unregisterProducer()
            self.transport.registerProducer(self.backlog, True)

        def serverSend(self, content, binary=False):
            backlog = self.backlog
            if backlog is not None and backlog.paused:
                backlog.bytes += len(content)
                budget = settings.REALTIME["OUTPUT_BUDGET_BYTES"]
                if backlog.bytes > budget:
                    OUTPUT_OVERFLOWS.inc()
                    logger.warning(
                        "Closed a WebSocket whose client does not read: over %d "
                        "bytes waiting (REALTIME_OUTPUT_BUDGET_BYTES) for %s",
                        budget,
                        self.client_addr,
                    )
                    self.backlog = None
                    self.transport.abortConnection()
                    return
            super().serverSend(content, binary)

    return BudgetedWebSocketProtocol


def install_output_budget() -> None:
    """Make daphne build every WebSocket connection with the output budget."""
    from daphne import ws_protocol

    factory = ws_protocol.WebSocketFactory
    if not getattr(factory.protocol, "budgeted", False):
        factory.protocol = budgeted_protocol(factory.protocol)
        factory.protocol.budgeted = True


class PromptWriteServer(tcp.Server):
    """A server-side TCP connection that sends a write at once when it can.

    Twisted's connections buffer every write for the reactor's next turn: the
    connection joins the reactor's writers (an ``epoll_ctl``), the loop wakes
    for it, sends, and leaves the writers (another ``epoll_ctl``). A WebSocket
    frame per delivered message paid that for nearly every frame, and more
    often the fewer frames each turn gathered, so a process paid more of it per
    message the less load it carried (README, "Thousands of sockets at once").
    This connection sends a write on the spot when nothing of its own is waiting,
    as asyncio's transports do; what the socket does not take, and everything
    after it until it is sent, waits in Twisted's buffer as before, in order.
    Writes over TLS, and any write once the connection is closing, take
    Twisted's own path.
    """

    _writing = False  # the reactor holds bytes of ours to send
    _closing = False  # aborted or half-closed: Twisted's checks apply

    def startWriting(self) -> None:
        self._writing = True
        super().startWriting()

    def stopWriting(self) -> None:
        self._writing = False
        super().stopWriting()

    def abortConnection(self) -> None:
        self._closing = True
        super().abortConnection()

    def loseWriteConnection(self) -> None:
        self._closing = True
        super().loseWriteConnection()

    def write(self, data: bytes) -> None:
        if (
            data
            and not self._writing
            and not self._closing
            and self.connected
            and not self.disconnecting
            and not self.TLS
        ):
            sent = self.writeSomeData(data)
            if isinstance(sent, int):  # else the connection is lost: the
                if sent == len(data):  # reactor's write finds and reports it
                    return
                data = data[sent:]
        super().write(data)


def install_prompt_writes() -> None:
    """Have daphne's TCP port accept every connection as a ``PromptWriteServer``.

    Twisted has no setting for writing at once; a port makes its connections
    with the class in its ``transport`` attribute, which Twisted documents as
    the way to choose a subclass of ``Server``.
    """
    if not issubclass(tcp.Port.transport, PromptWriteServer):
        tcp.Port.transport = PromptWriteServer


def plain_autobahn_log_values() -> None:
    """Have autobahn format its debug lines' values without terminal colours.

    autobahn's ``sendData`` builds the values of a debug line for every frame
    it writes (``hltype(self.sendData)``, ``hlval(...)``), before the logger
    finds that debug is off, and colours each with ``click.style`` when click
    can be imported (uvicorn needs click, so it always can): 3.1 µs a frame,
    where the same text without colours costs 1.2 µs; at one frame per
    delivered message, about 2 % of the 80-100 µs a chat delivery costs
    (README, "Thousands of sockets at once").
    autobahn has no setting for it; whether it colours is its module flag
    ``autobahn.util._HAS_CLICK``, set here, once. Debug lines, when enabled,
    read the same without the colour codes.
    """
    from autobahn import util

    util._HAS_CLICK = False
