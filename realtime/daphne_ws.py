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

``plain_autobahn_log_values`` takes the colours out of the values autobahn
formats for its debug lines, which it does for every frame it sends.
"""

import logging

from django.conf import settings
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
