"""HTML pages: the landing page at ``/`` and the reference web client at ``/app/``."""

from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.views.decorators.http import require_GET

# The client builds every node with DOM APIs and loads only its own modules, so
# the page can forbid inline scripts and foreign origins: an injected tag would
# not run even if one slipped through. Images may be blob: for upload previews.
APP_CSP = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' blob: data:",
        "connect-src 'self' ws: wss:",
        "worker-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
        "form-action 'self'",
    )
)


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    """The landing page: links to the web client, the API docs, admin and health."""
    return TemplateResponse(request, "bamchat/home.html", {})


@require_GET
def web_app(request: HttpRequest) -> HttpResponse:
    """The reference web client's single page; everything else is static files."""
    response = TemplateResponse(request, "bamchat/app.html", {})
    response["Content-Security-Policy"] = APP_CSP
    response["Cache-Control"] = "no-cache"
    return response
