"""Domain errors shared by REST and Socket.IO: each carries a contract error code."""

from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler


class DomainError(Exception):
    """A rule refused an operation; ``code`` is one of the codes of the contract."""

    code = "internal"
    http_status = status.HTTP_500_INTERNAL_SERVER_ERROR

    def __init__(self, message: str, *, fields: dict[str, list[str]] | None = None):
        super().__init__(message)
        self.message = message
        self.fields = fields or {}


class Invalid(DomainError):
    code = "invalid"
    http_status = status.HTTP_400_BAD_REQUEST


class NotFound(DomainError):
    code = "not_found"
    http_status = status.HTTP_404_NOT_FOUND


class Forbidden(DomainError):
    code = "forbidden"
    http_status = status.HTTP_403_FORBIDDEN


class TooLarge(DomainError):
    code = "too_large"
    http_status = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE


def invalid(field: str, message: str) -> Invalid:
    """An Invalid error about one field, with a field-level message."""
    return Invalid(message, fields={field: [message]})


def exception_handler(exc, context):
    """DRF exception handler that also renders domain errors in DRF's error shape."""
    if isinstance(exc, DomainError):
        body = dict(exc.fields) if exc.fields else {"detail": exc.message}
        if isinstance(exc, TooLarge):
            body["code"] = exc.code
        return Response(body, status=exc.http_status)
    return drf_exception_handler(exc, context)
