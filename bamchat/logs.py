"""Access logs without query strings: no token or Engine.IO ``sid`` reaches a log.

Socket.IO long-polling requests carry the Engine.IO ``sid`` (and, for clients
that cannot set ``auth``, the JWT as ``?token=``) in the query string, and daphne
logs each request's full URI. Two places write those lines: the ``daphne``
command's access log (a stream it writes itself) and ``manage.py runserver``'s
logger ``django.channels.server``. Both go through ``path_without_query``.
"""

import logging

from daphne.access import AccessLogGenerator

REDACTED_QUERY = "?[redacted]"


def path_without_query(path) -> str:
    """The path with any query string replaced by a fixed marker."""
    text = str(path)
    head, sep, _ = text.partition("?")
    return head + REDACTED_QUERY if sep else head


class RedactingAccessLogGenerator(AccessLogGenerator):
    """daphne's NCSA-style access log, written with query strings redacted."""

    def __call__(self, protocol, action, details):
        if "path" in details:
            details = {**details, "path": path_without_query(details["path"])}
        super().__call__(protocol, action, details)


class AccessLogQueryFilter(logging.Filter):
    """Logging filter that redacts the query string of access-log records."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, dict) and "path" in args:
            record.args = {**args, "path": path_without_query(args["path"])}
        return True


def install_access_log_redaction() -> None:
    """Make the ``daphne`` command build its access log with query strings redacted.

    daphne's command line imports the ASGI application (and so Django) before it
    creates its access logger, so replacing the class here takes effect.
    """
    import daphne.cli

    daphne.cli.AccessLogGenerator = RedactingAccessLogGenerator
