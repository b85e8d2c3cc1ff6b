"""nameko adapter of the gateway: a JSON HTTP API over every service, with bearer
tokens. Services check roles themselves; the gateway authenticates, translates
errors into JSON ({code, message, errors}, never a stack trace), exports and
exposes Prometheus metrics. Sign-in, sessions and revocations: users.py, security.py;
body limit and security headers: wsgi.py."""
from __future__ import annotations

import base64
import csv
import io
import json
import os
import time
import uuid
from datetime import datetime
from pathlib import Path

import structlog
from eventlet import tpool
from nameko.exceptions import RemoteError
from nameko.extensions import DependencyProvider
from nameko.web.handlers import HttpRequestHandler
from nameko.web.server import WebServer, WsgiApp
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from werkzeug.exceptions import HTTPException, MethodNotAllowed
from werkzeug.security import safe_join
from werkzeug.wrappers import Request, Response

from services.gateway import api, clients, live, uploads, users, wsgi
from services.gateway import security as sec
from services.gateway import store as st
from shared import auth, blobstore, calendar, casefile
from shared import units as unit_table
from shared.auth import verify_token
from shared.boundaries import parse_json, spreadsheet_cell
from shared.cli import SERVICES
from shared.errors import (
    InvalidInput,
    NotFound,
    PayloadTooLarge,
    Rejected,
    TooManyAttempts,
    Unauthenticated,
    bounded,
    nul_free,
)
from shared.logging import configure_logging
from shared.nameko_ext import Database, OutboxRelay, RpcProxy, rpc
from shared.procedure import Procedure
from shared.tokenkeys import check_startup

configure_logging("gateway")
check_startup("gateway", issuer="gateway")   # production: no start without fit token keys
log = structlog.get_logger(__name__)
# temp files of uploads a crash interrupted (none of a running upload: each holds a lock)
if (_removed := blobstore.store().cleanup()):
    log.warning("upload_temp_files_removed", count=_removed)

REGISTRY = CollectorRegistry()
LATENCY = Histogram("liandong_http_request_seconds", "Gateway request latency",
                    ["route", "method"], registry=REGISTRY)
HANDOFFS = Gauge("liandong_handoffs", "Handoffs by kind and state", ["kind", "state"],
                 registry=REGISTRY)
OVERDUE = Gauge("liandong_handoffs_overdue", "Open handoffs past a binding deadline",
                registry=REGISTRY)
ALERTS = Counter("liandong_alerts_received", "Alerts posted by system clients, by outcome "
                 "(created, merged, duplicate, refused): a storm shows as merged/duplicate",
                 ["client", "outcome"], registry=REGISTRY)
BACKLOG = Gauge("liandong_outbox_unsent", "Unsent outbox events", ["service"],
                registry=REGISTRY)
NOTIFICATIONS = Gauge("liandong_notifications", "Notification deliveries by status "
                      "(failing: pending after repeated failures)", ["status"],
                      registry=REGISTRY)
PROVISIONAL_YEAR = Gauge(
    "liandong_calendar_provisional_year",
    "1: deadlines in this year use a provisional holiday calendar (no official "
    "arrangement; reported for this year, and next year from 1 November)",
    ["year"], registry=REGISTRY)


def json_response(payload, status=200, headers=None) -> Response:
    return Response(json.dumps(payload, ensure_ascii=False, default=str), status=status,
                    headers=headers, mimetype="application/json")


def error_response(exc: Exception) -> Response:
    if isinstance(exc, TooManyAttempts):
        return json_response(exc.to_dict(), exc.http_status,
                             {"Retry-After": str(exc.retry_after)})
    if isinstance(exc, Rejected):
        return json_response(exc.to_dict(), exc.http_status)
    if isinstance(exc, RemoteError) and exc.exc_type == "UnknownService":
        return json_response({"code": "unavailable", "message": "service unavailable",
                              "errors": {}}, 503)
    incident = uuid.uuid4().hex[:12]
    log.error("http_internal_error", incident=incident, error=f"{type(exc).__name__}: {exc}")
    return json_response({"code": "internal", "message": f"internal error (incident "
                          f"{incident}); it has been logged", "errors": {}}, 500)


def max_body_bytes() -> int:
    """LIANDONG_MAX_BODY_BYTES: the largest request body a route takes unless it declares
    its own maximum (``@http(..., max_body=...)``); default 1 MiB."""
    raw = os.environ.get("LIANDONG_MAX_BODY_BYTES", str(1024 * 1024))
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        raise SystemExit(f"LIANDONG_MAX_BODY_BYTES must be a positive number of bytes, "
                         f"not {raw!r}")
    return value


MAX_BODY_BYTES = max_body_bytes()
MAX_BODY_KEY = "liandong.max_body"


class JsonWsgiApp(WsgiApp):
    """nameko's WSGI app, answering an unrouted path (404) or method (405) in JSON."""

    def body_limit(self, environ) -> int:
        """The largest body the route of this request takes (its ``max_body``, else
        LIANDONG_MAX_BODY_BYTES), known before the body is read."""
        try:
            provider, _ = self.url_map.bind_to_environ(environ).match()
        except HTTPException:
            return MAX_BODY_BYTES
        return getattr(provider, "max_body", None) or MAX_BODY_BYTES

    def __call__(self, environ, start_response):
        request = Request(environ, shallow=True)
        try:
            provider, values = self.url_map.bind_to_environ(environ).match()
        except HTTPException as exc:
            response = exc if exc.code is None or exc.code < 400 else http_error(exc)
            return response(environ, start_response)
        request.path_values = values
        return provider.handle_request(request)(environ, start_response)


def http_error(exc: HTTPException) -> Response:
    """A routing error (404, 405) as the API's JSON error."""
    allowed = sorted(exc.valid_methods or []) if isinstance(exc, MethodNotAllowed) else []
    if allowed:
        return json_response({"code": "method_not_allowed",
                              "message": "method not allowed on this route",
                              "errors": {"method": [f"allowed: {', '.join(allowed)}"]}},
                             405, {"Allow": ", ".join(allowed)})
    if exc.code == 404:
        return json_response({"code": "not_found", "message": "no such route",
                              "errors": {"path": ["see /api/v1/openapi.json"]}}, 404)
    return json_response({"code": "http_error", "message": exc.name.lower(), "errors": {}},
                         exc.code or 400)


class JsonWebServer(WebServer):
    """nameko's web server: JSON routing errors, and around them the body limit of the
    route a request is for and the security headers (wsgi.secure)."""

    def get_wsgi_app(self):
        app = JsonWsgiApp(self)
        return wsgi.secure(app, limit_of=app.body_limit)


class JsonHttp(HttpRequestHandler):
    """nameko's http entrypoint, with every failure turned into a JSON error, and a
    bounded body: ``max_body`` (bytes) declares a route's own maximum (an upload, an
    import); every other route takes at most LIANDONG_MAX_BODY_BYTES (413 beyond)."""

    server = JsonWebServer()

    def __init__(self, method, url, max_body: int | None = None, **kwargs):
        self.max_body = max_body
        super().__init__(method, url, **kwargs)

    def response_from_exception(self, exc):
        return error_response(exc)

    def handle_request(self, request):
        started = time.perf_counter()
        limit = self.max_body or MAX_BODY_BYTES
        try:   # one check for every route: query string and path are text, body bounded
            nul_free(request.args.to_dict(flat=False), "query")
            nul_free(request.path, "path")
            if request.content_length is not None and request.content_length > limit:
                raise PayloadTooLarge(f"request body over {limit} bytes",
                                      {"body": [f"at most {limit} bytes on this route"]})
        except Rejected as exc:
            return error_response(exc)
        request.environ[MAX_BODY_KEY] = limit    # _body reads no more (chunked bodies)
        response = super().handle_request(request)
        LATENCY.labels(self.url, self.method).observe(time.perf_counter() - started)
        return response


http = JsonHttp.decorator


def _body(request) -> dict:
    """The JSON object of a request (shared.boundaries: depth, numbers), or 4xx."""
    limit = request.environ.get(MAX_BODY_KEY, MAX_BODY_BYTES)
    raw = request.stream.read(limit + 1)      # a body without Content-Length: read so far
    if len(raw) > limit:
        raise PayloadTooLarge(f"request body over {limit} bytes",
                              {"body": [f"at most {limit} bytes on this route"]})
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidInput("request body is not UTF-8", {"body": ["not UTF-8"]}) from None
    body = parse_json(text or "{}")
    if not isinstance(body, dict):
        raise InvalidInput("request body must be a JSON object", {"body": ["object"]})
    return body


def _token(request) -> str:
    header = request.headers.get("Authorization", "")
    if not header.startswith("Bearer "):
        raise Unauthenticated("missing bearer token",
                              {"Authorization": ["expected 'Bearer <token>'"]})
    token = header[len("Bearer "):].strip()
    verify_token(token)
    return token


def _idempotency_key(request) -> str | None:
    """The client's ``Idempotency-Key`` header: a retried POST with the same key is
    done once (shared/idempotency.py); the service checks its form."""
    return request.headers.get("Idempotency-Key") or None


def _flag(request, name) -> bool:
    return request.args.get(name, "").lower() in ("1", "true", "yes")


def _collection(name: str):
    if name not in api.COLLECTIONS:
        raise NotFound(f"no collection {name!r}",
                       {"collection": [f"one of: {', '.join(api.COLLECTIONS)}"]})
    return api.COLLECTIONS[name][0]


EXPORT_COLUMNS = ["handoff_id", "kind", "case_number", "county", "domain", "owner_unit",
                  "counterpart_unit", "state", "deadline", "due_local", "time_left_hours",
                  "overdue"]


def export_rows(rows: list[dict]) -> list[list]:
    out = []
    for r in rows:
        d = r.get("deadline") or {}
        left = r.get("time_left_seconds")
        cells = [r["handoff_id"], r["kind"], r["case_number"], r.get("county") or "",
                 r.get("domain") or "", r["owner_unit"], r.get("counterpart_unit") or "",
                 r["state"], d.get("title", ""),
                 calendar.format_local(datetime.fromisoformat(d["due"]))
                 if d.get("due") else "",
                 round(left / 3600, 1) if left is not None else "",
                 "yes" if r.get("overdue") else ""]
        out.append([spreadsheet_cell(c) for c in cells])   # no cell runs as a formula
    return out


def to_csv(rows: list[dict]) -> bytes:
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(EXPORT_COLUMNS)   # every cell goes through spreadsheet_cell
    writer.writerows(export_rows(rows))
    return ("\ufeff" + buf.getvalue()).encode("utf-8")   # BOM: Excel opens UTF-8 Chinese


def to_xlsx(rows: list[dict]) -> bytes:
    from openpyxl import Workbook
    wb = Workbook(write_only=True)
    ws = wb.create_sheet("handoffs")
    ws.append(EXPORT_COLUMNS)
    for row in export_rows(rows):
        ws.append(row)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


STATIC_DIR = Path(__file__).resolve().parent / "static"
STATIC_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
                ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml",
                ".json": "application/json", ".png": "image/png", ".ico": "image/x-icon",
                ".txt": "text/plain; charset=utf-8"}
CONSOLE_HEADERS = {"Cache-Control": "no-cache"}   # the rest: wsgi.secure, on every response


def static_file(relative: str) -> Response:
    """A file of the console under static/: no '..', no absolute path, no dotfile, nothing
    a symlink leads out to, only the types listed; anything else is a JSON 404."""
    joined = safe_join(str(STATIC_DIR), relative) if "\x00" not in relative else None
    path = Path(joined).resolve() if joined else None
    if (path is None or STATIC_DIR not in path.parents or not path.is_file()
            or path.suffix.lower() not in STATIC_TYPES
            or any(part.startswith(".") for part in Path(relative).parts)):
        raise NotFound(f"no console file {relative!r}", {"path": ["not found"]})
    return Response(path.read_bytes(), headers={
        "Content-Type": STATIC_TYPES[path.suffix.lower()], **CONSOLE_HEADERS})


def _creation(request, kind: str) -> str:
    """The ``?command=`` of a create route: one of the procedure's creation commands
    (default the first); a step command on the create route is a 422, not a 500."""
    creations = list(Procedure.load(kind).creations)
    command = request.args.get("command", creations[0])
    if command not in creations:
        raise InvalidInput(f"{command!r} does not create a {kind}",
                           {"command": [f"one of: {', '.join(creations)}"]})
    return command


# the largest penalty-decision import the gateway takes (a 5,000-row XLSX is ~0.3 MiB)
IMPORT_MAX_BYTES = int(os.environ.get("SUPERVISION_IMPORT_MAX_BYTES", str(20 * 1024 * 1024)))
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _import_body(request) -> bytes:
    """The body of an import, refused with 413 past SUPERVISION_IMPORT_MAX_BYTES before
    it is read (Content-Length) and while it is read (no length, chunked)."""
    length = request.content_length
    if length is not None and length > IMPORT_MAX_BYTES:
        raise PayloadTooLarge("the import is too large", {"body": [
            f"at most {IMPORT_MAX_BYTES} bytes (SUPERVISION_IMPORT_MAX_BYTES); split the file"]})
    body = request.stream.read(IMPORT_MAX_BYTES + 1)
    if len(body) > IMPORT_MAX_BYTES:
        raise PayloadTooLarge("the import is too large", {"body": [
            f"at most {IMPORT_MAX_BYTES} bytes (SUPERVISION_IMPORT_MAX_BYTES); split the file"]})
    return body


def _command_kind(request) -> str:
    """The command-service kind of a /api/v1/<collection>/... request."""
    return api.COMMAND_COLLECTIONS[request.path.split("/")[3]]


def _address(request) -> str:
    return users.client_address(request.remote_addr, request.headers.get("X-Forwarded-For"))


class Sessions(DependencyProvider):
    """The gateway's side of sign-in: at start, users of the users file the database
    lacks are added (production refuses a development_only file: the container stops
    with the reason), and the token check consults ``token_revocations`` — the
    gateway's own, always current list (services keep theirs through
    shared/revocations.py)."""

    def setup(self):
        sec.totp_required_roles()           # a misconfiguration stops the start
        users.policy()
        users.trusted_proxies()
        with st.store.transaction() as s:
            added = sec.seed_users(s, sec.users_file())
        if added:
            log.info("users_imported", count=added, file=str(sec.users_file()))
        auth.set_revocation_check(self.revoked)

    @staticmethod
    def revoked(claims: dict) -> bool:
        with st.store.session() as s:
            return sec.is_revoked(s, claims)


def _tracker_marker():
    """The tracker's change marker, over a standalone RPC proxy kept by the watcher's
    green thread (a worker's proxy ends with its request; the stream outlives it)."""
    from nameko.standalone.rpc import ClusterRpcProxy

    from shared.deadletters import amqp_uri
    proxy = getattr(_tracker_marker, "proxy", None)
    if proxy is None:
        _tracker_marker.cluster = ClusterRpcProxy({"AMQP_URI": amqp_uri()}, timeout=10)
        proxy = _tracker_marker.proxy = _tracker_marker.cluster.start()
    try:
        return proxy.tracker.changes()["marker"]
    except Exception:
        _tracker_marker.cluster.stop()
        _tracker_marker.proxy = None
        raise


WATCHER = live.Watcher(_tracker_marker)


class GatewayService:
    name = "gateway"

    db = Database(st.store)
    relay = OutboxRelay(st.store)
    sessions = Sessions()

    tracker = RpcProxy("tracker")
    police_handoff = RpcProxy("police_handoff")
    market_referral = RpcProxy("market_referral")
    command = RpcProxy("command")
    documents = RpcProxy("documents")
    notifications = RpcProxy("notifications")
    alerts = RpcProxy("alerts")
    supervision = RpcProxy("supervision")

    def _svc(self, name):
        return getattr(self, name)

    def _case_service(self, collection: str) -> tuple[str, str | None]:
        """(RPC service, procedure kind) of a collection whose handoffs have case files."""
        if collection in api.COMMAND_COLLECTIONS:
            return "command", api.COMMAND_COLLECTIONS[collection]
        return _collection(collection), api.COLLECTIONS[collection][1]

    def _case_file(self, token, collection, handoff_id) -> tuple[str, dict]:
        service, kind = self._case_service(collection)
        listing = self._svc(service).documents(token, handoff_id)
        if listing["kind"] != kind:
            raise NotFound(f"no {kind} {handoff_id}", {"id": ["not found"]})
        return service, listing

    # ------------------------------------------------------------------ meta
    @rpc
    def health(self):
        from shared.messaging import backlog
        return {"service": self.name, "outbox": backlog(self.db)}

    @rpc
    def revocations(self):
        """Every revocation still in force: what a service loads before it counts its
        list as current (shared/revocations.py)."""
        with self.db.session() as s:
            return sec.active_revocations(s)

    @http("GET", "/healthz")
    def healthz(self, request):
        return json_response({"service": "gateway", "ok": True})

    @http("GET", "/")
    def console(self, request):
        return static_file("index.html")

    @http("GET", "/static/<path:path>")
    def static(self, request, path):
        return static_file(path)

    @http("GET", "/api/v1/openapi.json")
    def openapi(self, request):
        return json_response(api.openapi())

    @http("GET", "/metrics")
    def metrics(self, request):
        figures = self.tracker.metrics()
        HANDOFFS.clear()
        for kind, state, count in figures["by_state"]:
            HANDOFFS.labels(kind, state).set(count)
        OVERDUE.set(figures["overdue"])
        calendar_status = figures.get("calendar") or {"years": [], "provisional_years": []}
        PROVISIONAL_YEAR.clear()
        for year in calendar_status["years"]:
            PROVISIONAL_YEAR.labels(str(year["year"])).set(
                int(year["year"] in calendar_status["provisional_years"]))
        for name in SERVICES:
            if hasattr(self, name):
                try:
                    health = self._svc(name).health()
                    BACKLOG.labels(name).set(health["outbox"]["unsent"])
                    for status, n in (health.get("deliveries") or {}).items():
                        NOTIFICATIONS.labels(status).set(n)
                except Exception:  # noqa: BLE001 - a service down must not hide the rest
                    log.warning("metrics_health_failed", service=name)
        return Response(generate_latest(REGISTRY), mimetype="text/plain; version=0.0.4")

    @http("GET", "/api/v1/calendar")
    def calendar_status(self, request):
        verify_token(_token(request))
        return json_response(self.tracker.calendar_status())

    # ------------------------------------------------------------------ auth
    @http("POST", "/api/v1/login")
    def login(self, request):
        body = _body(request)
        return json_response(users.sign_in(body.get("username"), body.get("password"),
                                           body.get("otp"), _address(request)))

    @http("POST", "/api/v1/logout")
    def logout(self, request):
        """Revoke the token of this request: refused by every service from now on."""
        token = _token(request)
        claims = auth.unverified_claims(token)
        with self.db.transaction() as s:
            sec.revoke_token(s, claims, "signed out", claims["sub"], _address(request))
        self.relay.wake()
        return json_response({"revoked": claims["jti"], "sub": claims["sub"]})

    @http("GET", "/api/v1/me")
    def me(self, request):
        return json_response(verify_token(_token(request)).to_dict())

    @http("GET", "/api/v1/units")
    def units(self, request):
        """The reference table of units (contracts/units.yaml), for the console's forms."""
        _token(request)
        table = unit_table.load()
        return json_response({"kinds": table.kinds, "units": table.to_list()})

    # ------------------------------------------------------------------ tracking
    @http("GET", "/api/v1/handoffs")
    def board(self, request):
        token = _token(request)
        a = request.args
        rows = self.tracker.board(
            token, kind=a.get("kind"), county=a.get("county"), agency=a.get("agency"),
            domain_=a.get("domain"), state=a.get("state"), q=a.get("q"),
            open_only=not _flag(request, "all"), overdue_only=_flag(request, "overdue"),
            limit=a.get("limit", 200), offset=a.get("offset", 0))
        fmt = a.get("format", "json")
        if fmt == "csv":
            return Response(to_csv(rows), mimetype="text/csv", headers={
                "Content-Disposition": "attachment; filename=handoffs.csv"})
        if fmt == "xlsx":
            return Response(to_xlsx(rows), headers={
                "Content-Type": "application/vnd.openxmlformats-officedocument."
                                "spreadsheetml.sheet",
                "Content-Disposition": "attachment; filename=handoffs.xlsx"})
        if fmt != "json":
            raise InvalidInput("unknown format", {"format": ["json, csv or xlsx"]})
        return json_response(rows)

    @http("GET", "/api/v1/live")
    def live(self, request):
        """Server-Sent Events: ``change`` whenever the tracker took in an event (the
        console then reloads what it shows with its own token)."""
        _token(request)
        # eventlet's WSGI server holds output back until 4 KiB gathered: not for a stream
        request.environ["eventlet.minimum_write_chunk_size"] = 0
        return Response(live.stream(WATCHER), mimetype="text/event-stream", headers={
            "Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    @http("GET", "/api/v1/reference/command")
    def command_reference(self, request):
        """Command centres with their neighbours, partner agencies' units, domains and
        the periods in force (the console's dispatch and assistance forms)."""
        return json_response(self.command.reference(_token(request)))

    @http("GET", "/api/v1/assessment")
    def assessment(self, request):
        """The centres' assessment over [start, end): ack times, on-time reports, cases
        per action and the ranking (city centre, coordinators, operators)."""
        token, a = _token(request), request.args
        return json_response(self.command.assessment(token, a.get("start"), a.get("end")))

    @http("GET", "/api/v1/todo")
    def todo(self, request):
        """待办: what the caller's unit must do next, nearest deadline first."""
        return json_response(self.tracker.todo(_token(request),
                                               request.args.get("limit", 500)))

    @http("GET", "/api/v1/handoffs/<string:handoff_id>")
    def handoff(self, request, handoff_id):
        return json_response(self.tracker.handoff(_token(request), handoff_id))

    @http("GET", "/api/v1/statistics")
    def statistics(self, request):
        a = request.args
        return json_response(self.tracker.statistics(
            _token(request), a.get("group_by", "month"), a.get("start"), a.get("end")))

    @http("GET", "/api/v1/statistics/outcomes")
    def outcomes(self, request):
        a = request.args
        return json_response(self.tracker.outcomes(
            _token(request), a.get("group_by", "county"), a.get("start"), a.get("end")))

    # ------------------------------------------------------------------ referrals
    @http("POST", "/api/v1/evaluate")
    def evaluate(self, request):
        return json_response(self.police_handoff.evaluate(_token(request), _body(request)))

    @http("GET", "/api/v1/judgment/form")
    def judgment_form(self, request):
        """The judgment standard's rules and facts: the console's case-facts form."""
        return json_response(self.police_handoff.judgment_form(_token(request)))

    @http("GET", "/api/v1/procedures/<string:kind>")
    def procedure(self, request, kind):
        _token(request)
        for service, k in api.COLLECTIONS.values():
            if k == kind:
                return json_response(self._svc(service).procedure())
        if kind in api.COMMAND_COLLECTIONS.values():
            return json_response(self.command.procedure(kind))
        raise NotFound(f"no procedure {kind!r}", {"kind": ["unknown"]})

    @http("GET", "/api/v1/procedures/<string:kind>/payloads")
    def payloads(self, request, kind):
        schemas = api.payload_schemas(kind)
        if schemas is None:
            raise NotFound(f"no procedure {kind!r}", {"kind": ["unknown"]})
        return json_response({"kind": kind, "commands": schemas})

    # ------------------------------------------------------------------ 以罚代刑 supervision
    @http("POST", "/api/v1/penalty-decisions", max_body=IMPORT_MAX_BYTES)   # an import
    def import_penalties(self, request):
        token = _token(request)     # authenticate before reading the body
        body = _import_body(request)
        mimetype = request.mimetype or ""
        if mimetype in ("application/json", ""):
            try:
                data = parse_json(body.decode("utf-8") or "{}")   # depth, numbers bounded
            except UnicodeDecodeError as exc:
                raise InvalidInput("request body is not JSON",
                                   {"body": [str(exc)]}) from None
            if not isinstance(data, dict) or "decisions" not in data:
                raise InvalidInput("send {\"decisions\": [...]} or a CSV/XLSX file",
                                   {"decisions": ["required"]})
            report = self.supervision.import_decisions(token, data["decisions"])
        else:
            default = "import.xlsx" if mimetype == XLSX_TYPE else "import.csv"
            filename = request.args.get("filename") or default
            report = self.supervision.import_file(token, filename,
                                                  base64.b64encode(body).decode("ascii"))
        return json_response(report, 201, {"Location": f"/api/v1/penalty-imports/{report['id']}"})

    @http("GET", "/api/v1/penalty-decisions")
    def penalty_decisions(self, request):
        a = request.args
        return json_response(self.supervision.decisions(
            _token(request), a.get("show", "candidates"), a.get("county"),
            a.get("limit", 200), a.get("offset", 0)))

    @http("GET", "/api/v1/penalty-decisions/<path:decision_id>")
    def penalty_decision(self, request, decision_id):
        return json_response(self.supervision.decision(_token(request), decision_id))

    @http("GET", "/api/v1/penalty-imports")
    def penalty_imports(self, request):
        return json_response(self.supervision.imports(_token(request),
                                                      request.args.get("limit", 50)))

    @http("GET", "/api/v1/penalty-imports/<string:import_id>")
    def penalty_import(self, request, import_id):
        return json_response(self.supervision.import_status(_token(request), import_id))

    @http("GET", "/api/v1/statistics/supervision")
    def supervision_statistics(self, request):
        return json_response(self.supervision.statistics(_token(request)))

    # ------------------------------------------------------------------ command centres
    @http("GET", "/api/v1/joint-actions")
    @http("GET", "/api/v1/assistance-requests")
    def list_command_records(self, request):
        token = _token(request)     # authenticate before looking at the query
        a = request.args
        rows = self.command.list(token, a.get("state"), a.get("county"),
                                 bounded(a.get("limit", "200"), "limit", 1, 1000),
                                 bounded(a.get("offset", "0"), "offset", 0, 10**7),
                                 kind=_command_kind(request))
        return json_response(rows)

    @http("GET", "/api/v1/joint-actions/<string:handoff_id>")
    @http("GET", "/api/v1/assistance-requests/<string:handoff_id>")
    def get_command_record(self, request, handoff_id):
        rec = self.command.get(_token(request), handoff_id)
        if rec["kind"] != _command_kind(request):
            raise NotFound(f"no {_command_kind(request)} {handoff_id}", {"id": ["not found"]})
        return json_response(rec)

    @http("POST", "/api/v1/joint-actions")
    @http("POST", "/api/v1/assistance-requests")
    def create_command_record(self, request):
        token = _token(request)     # authenticate before looking at the query
        command = _creation(request, _command_kind(request))
        rec = self.command.create(token, command, _body(request),
                                  _idempotency_key(request))
        collection = request.path.split("/")[3]
        return json_response(rec, 201, {"Location": f"/api/v1/{collection}/{rec['id']}"})

    @http("POST", "/api/v1/joint-actions/<string:handoff_id>/<string:command>")
    @http("POST", "/api/v1/assistance-requests/<string:handoff_id>/<string:command>")
    def act_command_record(self, request, handoff_id, command):
        token, body = _token(request), _body(request)
        if self.command.get(token, handoff_id)["kind"] != _command_kind(request):
            raise NotFound(f"no {_command_kind(request)} {handoff_id}", {"id": ["not found"]})
        return json_response(self.command.act(token, handoff_id, command, body,
                                              _idempotency_key(request)))

    # ------------------------------------------------------------------ case files
    @http("GET", "/api/v1/<string:collection>/<string:handoff_id>/documents")
    def list_documents(self, request, collection, handoff_id):
        _service, listing = self._case_file(_token(request), collection, handoff_id)
        return json_response(listing["files"])

    @http("POST", "/api/v1/<string:collection>/<string:handoff_id>/documents",
          max_body=uploads.max_request_bytes())           # a case file: up to 512 MiB
    @http("POST", "/api/v1/joint-actions/<string:handoff_id>/documents",
          max_body=uploads.max_request_bytes())
    @http("POST", "/api/v1/assistance-requests/<string:handoff_id>/documents",
          max_body=uploads.max_request_bytes())
    def upload_document(self, request, handoff_id, collection=None):
        """A file streamed into the blob store, then filed as a step of the handoff
        (services/gateway/uploads.py). The command collections' own routes: their
        ``/<id>/<command>`` route would take ``documents`` for a command otherwise."""
        collection = collection or request.path.split("/")[3]
        token = _token(request)
        service, _listing = self._case_file(token, collection, handoff_id)
        svc = self._svc(service)
        fields, upload = uploads.receive(
            request, lambda kind: svc.check_attach(token, handoff_id, kind))
        with upload:
            media_type = casefile.sniff(upload.head, fields.get("declared"),
                                        fields["filename"])
            tpool.execute(upload.finish)       # fsync off the hub
            sha = upload.commit()
            document = {"document_id": blobstore.new_id(), "kind": fields["kind"],
                        "title": fields.get("title") or "", "filename": fields["filename"],
                        "media_type": media_type, "size": upload.size, "sha256": sha}
            if not document["title"]:
                document.pop("title")
            try:
                filed = svc.attach_file(token, handoff_id, document,
                                        _idempotency_key(request))
            except Exception:
                if upload.created:     # nothing half-written: the new blob goes again
                    blobstore.store().delete(sha)
                raise
        self.documents.register(token, {"sha256": sha, "size": upload.size,
                                        "media_type": media_type})
        return json_response(filed, 201, {
            "Location": f"/api/v1/{collection}/{handoff_id}/documents/{filed['id']}"})

    @http("GET", "/api/v1/<string:collection>/<string:handoff_id>/documents/"
                 "<string:document_id>")
    def download_document(self, request, collection, handoff_id, document_id):
        token = _token(request)
        service, kind = self._case_service(collection)
        record = self._svc(service).document(token, handoff_id, document_id)
        if record["handoff_kind"] != kind:
            raise NotFound(f"no {kind} {handoff_id}", {"id": ["not found"]})

        def audit(byte_range):
            self.documents.record_download(token, {
                "handoff_kind": kind, "handoff_id": handoff_id,
                "document_id": document_id, "sha256": record["sha256"], "range": byte_range})
        return uploads.serve(record, request, audit=audit)

    @http("GET", "/api/v1/<string:collection>/<string:handoff_id>/downloads")
    def document_downloads(self, request, collection, handoff_id):
        """The download audit of a handoff's case file (who downloaded which document,
        when, which range), newest first: coordinators and operators (the documents
        service checks the role)."""
        token = _token(request)
        self._case_file(token, collection, handoff_id)       # 404: no such handoff
        limit = request.args.get("limit", 200)
        return json_response(self.documents.downloads(token, handoff_id, limit))

    @http("GET", "/api/v1/<string:collection>/<string:handoff_id>/forms/<string:form>")
    def form(self, request, collection, handoff_id, form):
        service, _kind = self._case_service(collection)
        name = form.removesuffix(".pdf")
        out = self.documents.render_form(_token(request), service, handoff_id, name)
        return Response(base64.b64decode(out["pdf"]), headers={
            "Content-Type": "application/pdf", "Cache-Control": "private, no-cache",
            "Content-Disposition": uploads.content_disposition(out["filename"], True)})

    @http("POST", "/api/v1/<string:collection>/<string:handoff_id>/forms/<string:form>")
    def file_form(self, request, collection, handoff_id, form):
        service, _kind = self._case_service(collection)
        filed = self.documents.file_form(_token(request), service, handoff_id,
                                         form.removesuffix(".pdf"))
        return json_response(filed, 201, {
            "Location": f"/api/v1/{collection}/{handoff_id}/documents/{filed['id']}"})

    # ------------------------------------------------------------------ alerts
    @http("POST", "/api/v1/alerts")
    def post_alert(self, request):
        token = clients.authenticate(request.headers.get("Authorization", ""))
        client = verify_token(token).unit
        try:
            result = self.alerts.intake(token, _body(request))
        except Rejected:
            ALERTS.labels(client, "refused").inc()
            raise
        ALERTS.labels(client, result["outcome"]).inc()
        status = 201 if result["outcome"] == "created" else 200
        return json_response(result, status,
                             {"Location": f"/api/v1/alert-tasks/{result['task_id']}"})

    @http("GET", "/api/v1/alert-kinds")
    def alert_kinds(self, request):
        return json_response(self.alerts.kinds(_token(request)))

    @http("GET", "/api/v1/alert-statistics")
    def alert_statistics(self, request):
        return json_response(self.alerts.statistics(
            _token(request), request.args.get("group_by", "county")))

    @http("GET", "/api/v1/alert-intake")
    def alert_intake(self, request):
        return json_response(self.alerts.intake_status(_token(request)))

    @http("GET", "/api/v1/<string:collection>")
    def list_handoffs(self, request, collection):
        svc = self._svc(_collection(collection))
        return json_response(svc.list(_token(request), request.args.get("state"),
                                      request.args.get("county"),
                                      request.args.get("limit", "100"),
                                      request.args.get("offset", "0")))

    @http("POST", "/api/v1/<string:collection>")
    def create(self, request, collection):
        service = _collection(collection)
        token = _token(request)
        command = _creation(request, api.COLLECTIONS[collection][1])
        rec = self._svc(service).create(token, command, _body(request),
                                        _idempotency_key(request))
        return json_response(rec, 201, {"Location": f"/api/v1/{collection}/{rec['id']}"})

    @http("GET", "/api/v1/<string:collection>/<string:handoff_id>")
    def get(self, request, collection, handoff_id):
        svc = self._svc(_collection(collection))
        return json_response(svc.get(_token(request), handoff_id))

    @http("POST", "/api/v1/<string:collection>/<string:handoff_id>/<string:command>")
    def act(self, request, collection, handoff_id, command):
        svc = self._svc(_collection(collection))
        return json_response(svc.act(_token(request), handoff_id, command, _body(request),
                                     _idempotency_key(request)))
