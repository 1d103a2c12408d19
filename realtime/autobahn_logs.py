"""One debug message of autobahn (daphne's WebSocket layer) made cheap.

For every new WebSocket connection, autobahn's ``WebSocketProtocol`` pretty-
prints about forty settings with ``pprint.pformat`` and hands the text to a
debug log call that drops it at any normal log level. In a connect storm that
formatting alone was a tenth of the server's CPU (``bench/run.py --profile``).
autobahn has no setting to skip it, so its protocol module gets ``repr`` in
place of ``pformat``: the same information on one line, formatted in C.
"""

import sys
from pprint import pformat

PROTOCOL_MODULE = "autobahn.websocket.protocol"


def cheap_autobahn_debug_text() -> bool:
    """Swap the formatter if daphne loaded autobahn; whether it is swapped."""
    module = sys.modules.get(PROTOCOL_MODULE)
    if module is None:
        return False  # another server (uvicorn): nothing to do
    if getattr(module, "pformat", None) is pformat:
        module.pformat = repr
    return module.pformat is repr
