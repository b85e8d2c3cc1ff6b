"""The gateway's WSGI wrapper: what every HTTP response and request goes through before
nameko sees it (issue 15 part 3).

* A body larger than its route takes (``@http(..., max_body=...)``, else
  ``LIANDONG_MAX_BODY_BYTES``, default 1 MiB) is refused with 413
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

CONSOLE_CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; "
               "img-src 'self' data: blob:; media-src 'self' blob:; frame-src 'self' blob:; "
               "connect-src 'self'; object-src 'none'; "
               "base-uri 'none'; frame-ancestors 'none'; form-action 'self'")
API_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'"
COMMON = {"X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY",
          "Referrer-Policy": "no-referrer", "Cross-Origin-Opener-Policy": "same-origin"}
HSTS = "max-age=31536000; includeSubDomains"


def max_body_bytes(path: str = "") -> int:
    """The default limit (a route of the gateway may declare its own)."""
    return int(os.environ.get("LIANDONG_MAX_BODY_BYTES", str(1024 * 1024)))


def _refuse(start_response, status: str, code: str, message: str, errors: dict):
    body = json.dumps({"code": code, "message": message, "errors": errors}).encode()
    start_response(status, [("Content-Type", "application/json"),
                            ("Content-Length", str(len(body))), ("Connection", "close"),
                            ("Cache-Control", "no-store"), ("Content-Security-Policy",
                                                            API_CSP), *COMMON.items()])
    return [body]


def _over_limit(environ, limit: int):
    """None when the body may be read; else (status, code, message, errors). A chunked
    body is read here (up to the limit) only on routes that take small bodies; a route
    with a larger maximum of its own (an upload) streams it and bounds it itself."""
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
    if "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower() \
            and limit <= max_body_bytes():
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


def secure(app, limit_of=None):
    """Wrap a WSGI app with the body limit (``limit_of(environ)``: the route's own, else by
    path) and the security headers."""
    def wrapped(environ, start_response):
        limit = limit_of(environ) if limit_of else max_body_bytes(environ.get("PATH_INFO", ""))
        refused = _over_limit(environ, limit)
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


