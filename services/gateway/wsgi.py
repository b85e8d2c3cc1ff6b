"""The gateway's WSGI wrapper: what every HTTP response and request goes through before
nameko sees it (issue 15 part 3).

* A body larger than ``LIANDONG_MAX_BODY_BYTES`` (default 1 MiB; ``BODY_LIMITS`` per
  path, e.g. the supervision import's own limit) is refused with 413
  before it is read: by its ``Content-Length``, or — chunked — as soon as more than the
  limit has arrived. A ``Content-Length`` that is not a number is a 400.
* Security headers on every response (a handler's own value wins): a
  ``Content-Security-Policy`` (the console's for pages, ``default-src 'none'`` for the
  API), ``X-Content-Type-Options: nosniff``, ``X-Frame-Options: DENY``,
  ``Referrer-Policy: no-referrer``, ``Cache-Control: no-store`` on API responses (they
  carry personal data), and ``Strict-Transport-Security`` when the request came over TLS
  (directly, or ``X-Forwarded-Proto: https`` from a trusted proxy).
"""
from __future__ import annotations

import io
import json
import os

from nameko.web.server import WebServer

CONSOLE_CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; "
               "img-src 'self' data: blob:; connect-src 'self'; object-src 'none'; "
               "base-uri 'none'; frame-ancestors 'none'; form-action 'self'")
API_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'"
COMMON = {"X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY",
          "Referrer-Policy": "no-referrer", "Cross-Origin-Opener-Policy": "same-origin"}
HSTS = "max-age=31536000; includeSubDomains"


# path prefix -> its own body limit (the supervision import takes files up to 20 MiB)
BODY_LIMITS: dict[str, int] = {}


def max_body_bytes(path: str = "") -> int:
    for prefix in sorted(BODY_LIMITS, key=len, reverse=True):
        if path.startswith(prefix):
            return BODY_LIMITS[prefix]
    return int(os.environ.get("LIANDONG_MAX_BODY_BYTES", str(1024 * 1024)))


def _refuse(start_response, status: str, code: str, message: str, errors: dict):
    body = json.dumps({"code": code, "message": message, "errors": errors}).encode()
    start_response(status, [("Content-Type", "application/json"),
                            ("Content-Length", str(len(body))), ("Connection", "close"),
                            ("Cache-Control", "no-store"), ("Content-Security-Policy",
                                                            API_CSP), *COMMON.items()])
    return [body]


def _over_limit(environ, limit: int):
    """None when the body may be read; else (status, code, message, errors)."""
    length = environ.get("CONTENT_LENGTH") or ""
    if length:
        if not length.isdigit():
            return ("400 Bad Request", "bad_request", "Content-Length is not a number",
                    {"Content-Length": ["a number of bytes"]})
        if int(length) > limit:
            return ("413 Request Entity Too Large", "payload_too_large",
                    f"request body of {length} bytes is over the limit of {limit}",
                    {"body": [f"at most {limit} bytes"]})
        return None
    if "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower():
        data = environ["wsgi.input"].read(limit + 1)
        if len(data) > limit:
            return ("413 Request Entity Too Large", "payload_too_large",
                    f"request body is over the limit of {limit} bytes",
                    {"body": [f"at most {limit} bytes"]})
        environ["wsgi.input"] = io.BytesIO(data)
        environ["CONTENT_LENGTH"] = str(len(data))
        environ.pop("HTTP_TRANSFER_ENCODING", None)
    return None


def _tls(environ) -> bool:
    if environ.get("wsgi.url_scheme") == "https":
        return True
    from services.gateway.users import _trusted
    return (environ.get("HTTP_X_FORWARDED_PROTO", "").lower() == "https"
            and _trusted(environ.get("REMOTE_ADDR", "")))


def secure(app):
    """Wrap a WSGI app with the body limit and the security headers."""
    def wrapped(environ, start_response):
        refused = _over_limit(environ, max_body_bytes(environ.get("PATH_INFO", "")))
        if refused:
            return _refuse(start_response, *refused)
        api = environ.get("PATH_INFO", "").startswith("/api/")
        defaults = {**COMMON, "Content-Security-Policy": API_CSP if api else CONSOLE_CSP}
        if api:
            defaults["Cache-Control"] = "no-store"
        if _tls(environ):
            defaults["Strict-Transport-Security"] = HSTS

        def start(status, headers, exc_info=None):
            present = {name.lower() for name, _ in headers}
            headers = list(headers) + [(k, v) for k, v in defaults.items()
                                       if k.lower() not in present]
            return start_response(status, headers, exc_info)
        return app(environ, start)
    return wrapped


class SecureWebServer(WebServer):
    """nameko's web server with ``secure`` around its WSGI app."""

    def get_wsgi_app(self):
        return secure(super().get_wsgi_app())
