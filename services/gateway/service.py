"""nameko adapter of the gateway: a JSON HTTP API over every service, with bearer
tokens. Services check roles themselves; the gateway authenticates, translates
errors into JSON ({code, message, errors}, never a stack trace), exports and
exposes Prometheus metrics."""
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
from nameko.exceptions import RemoteError
from nameko.rpc import RpcProxy
from nameko.web.handlers import HttpRequestHandler
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from werkzeug.security import safe_join
from werkzeug.wrappers import Response

from services.gateway import api, clients, users
from shared import calendar
from shared.auth import verify_token
from shared.cli import SERVICES
from shared.errors import InvalidInput, NotFound, Rejected, Unauthenticated, nul_free
from shared.logging import configure_logging
from shared.nameko_ext import rpc
from shared.procedure import Procedure
from shared.tokenkeys import check_startup

configure_logging("gateway")
check_startup("gateway", issuer="gateway")   # production: no start without fit token keys
log = structlog.get_logger(__name__)

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
PROVISIONAL_YEAR = Gauge(
    "liandong_calendar_provisional_year",
    "1: deadlines in this year use a provisional holiday calendar (no official "
    "arrangement; reported for this year, and next year from 1 November)",
    ["year"], registry=REGISTRY)


def json_response(payload, status=200, headers=None) -> Response:
    return Response(json.dumps(payload, ensure_ascii=False, default=str), status=status,
                    headers=headers, mimetype="application/json")


def error_response(exc: Exception) -> Response:
    if isinstance(exc, Rejected):
        return json_response(exc.to_dict(), exc.http_status)
    if isinstance(exc, RemoteError) and exc.exc_type == "UnknownService":
        return json_response({"code": "unavailable", "message": "service unavailable",
                              "errors": {}}, 503)
    incident = uuid.uuid4().hex[:12]
    log.error("http_internal_error", incident=incident, error=f"{type(exc).__name__}: {exc}")
    return json_response({"code": "internal", "message": f"internal error (incident "
                          f"{incident}); it has been logged", "errors": {}}, 500)


class JsonHttp(HttpRequestHandler):
    """nameko's http entrypoint, with every failure turned into a JSON error."""

    def response_from_exception(self, exc):
        return error_response(exc)

    def handle_request(self, request):
        started = time.perf_counter()
        try:   # one check for every route: query string and path are text
            nul_free(request.args.to_dict(flat=False), "query")
            nul_free(request.path, "path")
        except Rejected as exc:
            return error_response(exc)
        response = super().handle_request(request)
        LATENCY.labels(self.url, self.method).observe(time.perf_counter() - started)
        return response


http = JsonHttp.decorator


def _body(request) -> dict:
    try:
        body = json.loads(request.get_data(as_text=True) or "{}")
    except json.JSONDecodeError as exc:
        raise InvalidInput("request body is not JSON", {"body": [exc.msg]}) from None
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
        out.append([r["handoff_id"], r["kind"], r["case_number"], r.get("county") or "",
                    r.get("domain") or "", r["owner_unit"], r.get("counterpart_unit") or "",
                    r["state"], d.get("title", ""),
                    calendar.format_local(datetime.fromisoformat(d["due"]))
                    if d.get("due") else "",
                    round(left / 3600, 1) if left is not None else "",
                    "yes" if r.get("overdue") else ""])
    return out


def to_csv(rows: list[dict]) -> bytes:
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(EXPORT_COLUMNS)
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
CONSOLE_HEADERS = {
    "Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer", "X-Frame-Options": "DENY",
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; "
                               "img-src 'self' data: blob:; connect-src 'self'; "
                               "object-src 'none'; base-uri 'none'; frame-ancestors 'none'"}


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


class PayloadTooLarge(Rejected):
    code = "payload_too_large"
    http_status = 413


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


class GatewayService:
    name = "gateway"

    tracker = RpcProxy("tracker")
    police_handoff = RpcProxy("police_handoff")
    market_referral = RpcProxy("market_referral")
    command = RpcProxy("command")
    alerts = RpcProxy("alerts")
    supervision = RpcProxy("supervision")

    def _svc(self, name):
        return getattr(self, name)

    # ------------------------------------------------------------------ meta
    @rpc
    def health(self):
        return {"service": self.name, "outbox": {"unsent": 0}}

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
                    BACKLOG.labels(name).set(self._svc(name).health()["outbox"]["unsent"])
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
        return json_response(users.login(body.get("username"), body.get("password")))

    @http("GET", "/api/v1/me")
    def me(self, request):
        return json_response(verify_token(_token(request)).to_dict())

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

    @http("GET", "/api/v1/procedures/<string:kind>")
    def procedure(self, request, kind):
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
    @http("POST", "/api/v1/penalty-decisions")
    def import_penalties(self, request):
        token = _token(request)     # authenticate before reading the body
        body = _import_body(request)
        mimetype = request.mimetype or ""
        if mimetype in ("application/json", ""):
            try:
                data = json.loads(body.decode("utf-8") or "{}")
            except (UnicodeDecodeError, json.JSONDecodeError) as exc:
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
        kind, limit = _command_kind(request), request.args.get("limit", "200")
        if not limit.isdigit():
            raise InvalidInput("limit must be an integer", {"limit": ["integer"]})
        rows = self.command.list(token, request.args.get("state"),
                                 request.args.get("county"), int(limit), kind=kind)
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
        kind = _command_kind(request)
        creations = list(Procedure.load(kind).creations)
        command = request.args.get("command", creations[0])
        if command not in creations:
            raise InvalidInput(f"{command!r} does not create a {kind}",
                               {"command": [f"one of: {', '.join(creations)}"]})
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
        kind = api.COLLECTIONS[collection][1]
        default = next(iter(Procedure.load(kind).creations))
        rec = self._svc(service).create(_token(request), request.args.get("command", default),
                                        _body(request), _idempotency_key(request))
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
