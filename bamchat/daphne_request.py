"""daphne's HTTP request with body limits applied while the body arrives.

daphne reads a request's whole body (into memory, or a temporary file when the
length is declared and large) before the application runs, so no ASGI middleware
can refuse it in time; and Twisted underneath parses a POSTed form body in the
reactor thread, stalling every connection of the process, though daphne never uses
the result. daphne has no setting for either, and no public way to choose its
request class: ``daphne.http_protocol.HTTPFactory.buildProtocol`` gives every
connection ``WebRequest``. ``install_body_limits`` replaces that one name when
Django loads the apps, which the daphne command does before it builds its server
(as ``bamchat.logs`` does for the access log); so ``daphne bamchat.asgi:application``
runs with it however it is started.
"""

import logging
import tempfile

from daphne import http_protocol

from bamchat.bodylimit import TOO_LARGE_BODY, body_refused, request_body_limit

logger = logging.getLogger(__name__)

# A body of unknown length (chunked) goes to disk past this, as Twisted does for a
# declared length.
MEMORY_BODY_BYTES = 100_000
# After the 413, what the client still sends is read and dropped this long before
# the connection is cut: closing with unread data would reset the connection, and
# the client could lose the answer before reading it.
REFUSED_LINGER_S = 2

TOO_LARGE_RESPONSE = (
    b"HTTP/1.1 413 Content Too Large\r\n"
    b"Content-Type: application/json\r\n"
    b"Content-Length: %d\r\n"
    b"Connection: close\r\n\r\n" % len(TOO_LARGE_BODY)
) + TOO_LARGE_BODY


def _drop(data: bytes) -> None:
    """Read and forget what a refused client still sends."""


class BodyLimitedRequest(http_protocol.WebRequest):
    """daphne's request without Twisted's form parsing, answering 413 as soon as the
    declared length, or the bytes received, pass ``request_body_limit``."""

    def __init__(self, channel, *args, **kwargs):
        # daphne hands the raw body to the app: Twisted's parse of a form body into
        # ``request.args`` would only stall the reactor.
        kwargs["parsePOSTFormSubmission"] = False
        super().__init__(channel, *args, **kwargs)
        self.body_limit = 0
        self.body_received = 0
        self.refused = False
        self._linger = None

    def gotLength(self, length):
        """Refuse a declared length over the limit (the headers are all in, the body
        not yet); keep a body of unknown length in a file that spills to disk."""
        self.body_limit = request_body_limit(
            (name, value)
            for name, values in self.requestHeaders.getAllRawHeaders()
            for value in values
        )
        if length is not None and length > self.body_limit:
            super().gotLength(0)
            self._refuse("declared", length)
        elif length is None:
            self.content = tempfile.SpooledTemporaryFile(max_size=MEMORY_BODY_BYTES)
        else:
            super().gotLength(length)

    def handleContentChunk(self, data):
        """Keep a piece of the body, unless the body has now passed the limit."""
        if self.refused:
            return
        self.body_received += len(data)
        if self.body_received > self.body_limit:
            self._refuse("received", self.body_received)
            return
        super().handleContentChunk(data)

    def requestReceived(self, command, path, version):
        """Hand the complete request to the application, unless it was refused."""
        if not self.refused:
            super().requestReceived(command, path, version)

    def connectionLost(self, reason):
        """Stop the linger timer of a refused request, then clean up as daphne does."""
        if self._linger is not None and self._linger.active():
            self._linger.cancel()
        super().connectionLost(reason)

    def _refuse(self, when: str, size: int) -> None:
        self.refused = True
        body_refused(when, size=size, limit=self.body_limit)
        # Twisted answers "Expect: 100-continue" after gotLength; not after a 413.
        self.requestHeaders.removeHeader(b"Expect")
        channel = self.channel
        transport = channel.transport
        transport.write(TOO_LARGE_RESPONSE)
        channel.dataReceived = _drop
        close_write = getattr(
            transport, "loseWriteConnection", transport.loseConnection
        )
        close_write()
        self._linger = channel.callLater(REFUSED_LINGER_S, transport.abortConnection)


def install_body_limits() -> None:
    """Make daphne build every HTTP request of this process as a BodyLimitedRequest."""
    http_protocol.WebRequest = BodyLimitedRequest
