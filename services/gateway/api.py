"""The HTTP API as data: routes, the collections of handoffs behind them, and the
OpenAPI document generated from this table and the marshmallow schemas."""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from marshmallow import Schema, fields

from shared.events import KINDS
from shared.procedure import Procedure

API = "/api/v1"

# URL collection -> (service name, procedure kind)
COLLECTIONS: dict[str, tuple[str, str]] = {
    "criminal-referrals": ("police_handoff", "criminal_referral"),
    "market-referrals": ("market_referral", "market_referral"),
    "alert-tasks": ("alerts", "alert_task"),     # tasks made from online alerts (issue 17)
    "supervision-inquiries": ("supervision", "supervision_inquiry"),
}
# URL collection -> procedure kind, both kept by the command service (list, get, act)
COMMAND_COLLECTIONS: dict[str, str] = {
    "joint-actions": "joint_action",
    "assistance-requests": "assistance_request",
}


@dataclass(frozen=True)
class Route:
    method: str
    path: str            # OpenAPI style: /api/v1/handoffs/{handoff_id}
    summary: str
    tag: str
    auth: bool = True
    params: tuple = ()   # (name, in, type, description)
    body: str | None = None
    responses: dict = field(default_factory=lambda: {"200": "OK"})


BOARD_FILTERS = (
    ("kind", "query", "string", "criminal_referral, market_referral, joint_action, ..."),
    ("county", "query", "string", "county code, e.g. lucheng"),
    ("agency", "query", "string", "counterpart agency: police, market_regulation, command"),
    ("domain", "query", "string", "joint-action domain, e.g. key_vehicles"),
    ("state", "query", "string", "current state"),
    ("q", "query", "string", "case number, plate or party name"),
    ("overdue", "query", "boolean", "only overdue"),
    ("all", "query", "boolean", "include closed handoffs"),
    ("limit", "query", "integer", "at most this many (default 200)"),
    ("offset", "query", "integer", "skip this many"),
)

ROUTES: list[Route] = [
    Route("POST", f"{API}/login", "Sign in; returns a bearer token (429 with Retry-After "
          "while the user name or address is locked out after failures)", "auth",
          auth=False, body="Login"),
    Route("POST", f"{API}/logout", "Sign out: the token is revoked at every service",
          "auth"),
    Route("GET", f"{API}/me", "Who the token belongs to", "auth"),
    Route("GET", f"{API}/openapi.json", "This document", "meta", auth=False),
    Route("GET", f"{API}/units", "The reference table of units (contracts/units.yaml): "
          "id, name, kind, role, county", "meta"),
    Route("GET", "/healthz", "Gateway liveness", "meta", auth=False),
    Route("GET", "/metrics", "Prometheus metrics", "meta", auth=False),
    Route("GET", f"{API}/calendar", "Holiday calendar of this year and next: each year's "
          "source (official notice, package, or provisional) and a warning when a year "
          "that matters has no official arrangement", "meta"),
    Route("GET", f"{API}/handoffs", "Board: handoffs visible to the caller, nearest deadline "
          "first; format=csv|xlsx exports", "tracking",
          params=BOARD_FILTERS + (("format", "query", "string", "json (default), csv, xlsx"),)),
    Route("GET", f"{API}/live", "Live updates (text/event-stream): `change` whenever the "
          "tracker took in an event; reload what you show with your own token", "tracking"),
    Route("GET", f"{API}/reference/command", "Command centres (with neighbours), partner "
          "agencies' units, domains, periods in force", "reference"),
    Route("GET", f"{API}/assessment", "Centre assessment over [start, end): median and p90 "
          "acknowledgement minutes, on-time report rate, cases per action, alert tasks' "
          "median minutes to ack / on site / closed per county and domain, ranking",
          "command",
          params=(("start", "query", "string", "ISO 8601 with offset"),
                  ("end", "query", "string", "ISO 8601 with offset"))),
    Route("GET", f"{API}/todo", "待办: open handoffs waiting for the caller's unit (its "
          "next steps in `todo`), nearest deadline first; coordinators and operators get "
          "the overdue ones", "tracking",
          params=(("limit", "query", "integer", "at most this many (default 500)"),)),
    Route("GET", f"{API}/handoffs/{{handoff_id}}", "Status, timeline, next deadline",
          "tracking", params=(("handoff_id", "path", "string", "handoff id"),)),
    Route("GET", f"{API}/statistics", "Counts, rates, hours per step", "tracking",
          params=(("group_by", "query", "string", "month, county, domain, agency, kind"),
                  ("start", "query", "string", "YYYY-MM-DD"),
                  ("end", "query", "string", "YYYY-MM-DD"))),
    Route("GET", f"{API}/statistics/outcomes", "Criminal referrals' outcomes: referred, "
          "filed, prosecuted, convicted (and dropped, not prosecuted, returned) with the "
          "rates, by county or offence", "tracking",
          params=(("group_by", "query", "string", "county (default) or offence"),
                  ("start", "query", "string", "referred on or after, YYYY-MM-DD"),
                  ("end", "query", "string", "referred before, YYYY-MM-DD"))),
    Route("POST", f"{API}/evaluate", "Judgment standards on a case's facts", "referrals",
          body="Facts"),
    Route("GET", f"{API}/judgment/form", "The judgment standard as a form: each rule "
          "(title, suspected offence, legal basis) with the facts it is evaluated on, and "
          "each fact's type, unit, values and description", "referrals"),
    Route("GET", f"{API}/procedures/{{kind}}", "A procedure's transition table", "referrals",
          params=(("kind", "path", "string", "criminal_referral, market_referral, ..."),)),
    Route("GET", f"{API}/procedures/{{kind}}/payloads", "JSON Schema of each command's "
          "payload (the console builds its forms from them)", "referrals", auth=False,
          params=(("kind", "path", "string", "criminal_referral, market_referral, ..."),)),
    Route("POST", f"{API}/alerts", "An online alert from a system client (monitoring "
          "platform, weigh-in-motion site, 12328 hotline, port monitoring): "
          "Authorization: Basic base64(client_id:secret). Checked against its kind "
          "(contracts/standards/alerts.yaml; 422 names the bad fields), applied once per "
          "(client, alert_id), joined to the open task of its vehicle/vessel within the "
          "window or made a task for its county's team. 201 created, 200 merged/duplicate",
          "alerts", auth=False, body="Alert",
          responses={"201": "a new task", "200": "merged into an open task, or a repeat"}),
    Route("GET", f"{API}/alert-kinds", "Kinds of alert, domains, sites, berths, periods",
          "alerts"),
    Route("GET", f"{API}/alert-statistics", "Alerts → tasks → cases opened, escalations, "
          "median minutes to ack / on site / result / closed", "alerts",
          params=(("group_by", "query", "string", "county (default), domain, alert_kind"),
                  ("start", "query", "string", "tasks dispatched from (ISO 8601, optional)"),
                  ("end", "query", "string", "tasks dispatched before (ISO 8601, optional)"))),
    Route("GET", f"{API}/alert-intake", "Alerts a minute per source (HTTP and MQTT, "
          "applied and dead-lettered) and whether it is a storm (the wall's banner)",
          "alerts"),
    Route("POST", f"{API}/penalty-decisions", "Import administrative penalty decisions "
          "(以罚代刑 supervision): a CSV or XLSX file as the body (Content-Type text/csv or "
          "the XLSX type, ?filename=) or JSON {decisions: [...]} from the case system; "
          "good rows are imported, bad ones reported as {line, field, reason} "
          "(contracts/supervision/README.md)", "supervision",
          params=(("filename", "query", "string", "the file's name (.csv or .xlsx)"),),
          body="Payload", responses={"201": "Imported (the report)"}),
    Route("GET", f"{API}/penalty-decisions", "Penalty decisions the caller may see: "
          "candidates (meet a criminal threshold, not referred), suspects or all",
          "supervision", params=(
              ("show", "query", "string", "candidates (default), suspects, all"),
              ("county", "query", "string", "county code"),
              ("limit", "query", "integer", "at most this many (default 200)"),
              ("offset", "query", "integer", "skip this many"))),
    Route("GET", f"{API}/penalty-decisions/{{id}}", "One decision: the rules it meets "
          "(threshold crossed, basis), covering criminal referrals, inquiries",
          "supervision", params=(("id", "path", "string", "the decision's case number"),)),
    Route("GET", f"{API}/penalty-imports", "The latest imports with their counts",
          "supervision", params=(("limit", "query", "integer", "default 50"),)),
    Route("GET", f"{API}/penalty-imports/{{id}}", "One import with its row errors",
          "supervision", params=(("id", "path", "string", "import id"),)),
    Route("GET", f"{API}/statistics/supervision", "Decisions imported, matches, "
          "candidates, inquiries, transfers that followed", "supervision"),
    Route("GET", "/", "The web console (services/gateway/static/index.html)", "console",
          auth=False),
    Route("GET", "/static/{path}", "The console's static files (HTML, ES modules, CSS)",
          "console", auth=False,
          params=(("path", "path", "string", "a file under services/gateway/static"),)),
]
IDEMPOTENCY = ("Idempotency-Key", "header", "string",
               "optional; a retry with the same key (and the same request) is done once "
               "and answered with the first result; another request under a used key: 409")
LIST_PARAMS = (("state", "query", "string", "state"), ("county", "query", "string", "county"),
               ("limit", "query", "integer", "at most this many you may see (default 100)"),
               ("offset", "query", "integer", "skip this many you may see"))

def _collection_routes(collection: str, kind: str, create_note: str, one: str) -> list[Route]:
    """list, create, read one, act: the same four routes for every collection."""
    p = (("id", "path", "string", "handoff id"),)
    return [
        Route("GET", f"{API}/{collection}", f"List {kind} visible to the caller", kind,
              params=LIST_PARAMS),
        Route("POST", f"{API}/{collection}", f"Create a {kind} (command in ?command={create_note})",
              kind, params=(("command", "query", "string", "creation command"), IDEMPOTENCY),
              body="Payload", responses={"201": "Created"}),
        Route("GET", f"{API}/{collection}/{{id}}", f"One {kind} with {one}", kind, params=p),
        Route("POST", f"{API}/{collection}/{{id}}/{{command}}", f"Apply a {kind} step", kind,
              params=p + (("command", "path", "string", "procedure command"), IDEMPOTENCY),
              body="Payload"),
    ]


def _case_file_routes(collection: str, kind: str) -> list[Route]:
    """The case file of every collection: list, upload, download, official forms."""
    p = (("id", "path", "string", "handoff id"),)
    one = p + (("document_id", "path", "string", "document id"),
               ("Range", "header", "string", "optional: bytes=first-last (206)"),
               ("If-None-Match", "header", "string", "optional: the ETag (SHA-256) -> 304"),
               ("download", "query", "boolean", "Content-Disposition: attachment"))
    form = p + (("form", "path", "string", "e.g. transfer_letter.pdf"),)
    base = f"{API}/{collection}/{{id}}"
    return [
        Route("GET", f"{base}/documents", f"The case file of a {kind}: its documents", kind,
              params=p),
        Route("POST", f"{base}/documents", f"Upload a document to a {kind}'s case file "
              "(multipart: file, kind, title; at most 512 MiB)", kind,
              params=p + (IDEMPOTENCY,), body="Upload", responses={"201": "Filed"}),
        Route("GET", f"{base}/documents/{{document_id}}", "A document's bytes (ETag = "
              "SHA-256, Range, If-None-Match)", kind, params=one,
              responses={"200": "the bytes", "206": "a range", "304": "not modified"}),
        Route("GET", f"{base}/downloads", "The download audit of the case file (who "
              "downloaded which document, when, which range), newest first: coordinators "
              "and operators", kind,
              params=p + (("limit", "query", "integer", "at most this many (default 200)"),)),
        Route("GET", f"{base}/forms/{{form}}", f"An official form of a {kind} as PDF",
              kind, params=form, responses={"200": "application/pdf"}),
        Route("POST", f"{base}/forms/{{form}}", "Generate a form and file it in the case "
              "file", kind, params=form, responses={"201": "Filed"}),
    ]


for collection, (_service, kind) in COLLECTIONS.items():
    ROUTES += _collection_routes(collection, kind, "",
                                 "timeline and next actions for the caller")
for collection, kind in COMMAND_COLLECTIONS.items():
    ROUTES += _collection_routes(
        collection, kind, f", default {next(iter(Procedure.load(kind).creations))}",
        "its recipients, timeline and next actions for the caller")
for collection, kind in {**{c: k for c, (_s, k) in COLLECTIONS.items()},
                         **COMMAND_COLLECTIONS}.items():
    ROUTES += _case_file_routes(collection, kind)


def _payload_classes() -> dict[str, dict]:
    from shared.schemas import (
        alerts,
        command,
        criminal_referral,
        market_referral,
        supervision_inquiry,
    )
    return {"alert_task": alerts.ALERT_TASK_COMMANDS,
            "criminal_referral": criminal_referral.COMMAND_SCHEMAS,
            "market_referral": market_referral.COMMAND_SCHEMAS,
            "supervision_inquiry": supervision_inquiry.COMMAND_SCHEMAS,
            "joint_action": command.JOINT_ACTION_COMMANDS,
            "assistance_request": command.ASSISTANCE_COMMANDS}


@cache
def payload_schemas(kind: str) -> dict | None:
    """command -> JSON Schema of its payload (what the service loads), or None."""
    from shared.contracts import schema_document
    classes = _payload_classes().get(kind)
    if classes is None:
        return None
    return {command: schema_document(cls, schema_id=f"urn:liandong:payload:{kind}.{command}",
                                     title=f"{kind}.{command}")
            for command, cls in classes.items()}


class ErrorSchema(Schema):
    code = fields.String(required=True, metadata={"description": "machine-readable code"})
    message = fields.String(required=True)
    errors = fields.Dict(metadata={"description": "field -> messages"})


class LoginSchema(Schema):
    username = fields.String(required=True)
    password = fields.String(required=True)
    otp = fields.String(metadata={"description": "the 6-digit TOTP code, for users with "
                                                "a second factor"})


def openapi() -> dict:
    spec = APISpec(title="Liandong API", version="1.0.0", openapi_version="3.0.3",
                   plugins=[MarshmallowPlugin()],
                   info={"description": "Cross-agency handoffs of Wenzhou transport "
                                        "enforcement (联动). Every error is JSON: "
                                        "{code, message, errors}."})
    spec.components.security_scheme("bearer", {"type": "http", "scheme": "bearer",
                                               "bearerFormat": "JWT"})
    spec.components.schema("Error", schema=ErrorSchema)
    spec.components.schema("Login", schema=LoginSchema)
    spec.components.schema("Facts", {"type": "object", "additionalProperties": True})
    spec.components.schema("Alert", {"type": "object", "additionalProperties": True,
                                     "required": ["alert_id", "kind"],
                                     "description": "alert_id (the source's own id), kind "
                                     "(GET /api/v1/alert-kinds) and the kind's fields"})
    spec.components.security_scheme("client", {"type": "http", "scheme": "basic"})
    spec.components.schema("Payload", {"type": "object", "additionalProperties": True,
                                       "description": "the command's payload; see "
                                       "x-commands of the path"})
    error = {"description": "error", "content": {
        "application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
    paths: dict[str, dict] = {}
    for r in ROUTES:
        op = {"summary": r.summary, "tags": [r.tag],
              "responses": {code: {"description": text, "content": {"application/json": {
                  "schema": {"type": "object"}}}} for code, text in r.responses.items()}}
        op["responses"].update({"400": error, "401": error, "403": error, "404": error,
                                "409": error, "422": error, "429": error, "503": error})
        if r.body:
            op["responses"]["413"] = error   # over the route's body maximum
        if r.auth:
            op["security"] = [{"bearer": []}]
        elif r.tag == "alerts":
            op["security"] = [{"client": []}]
        if r.params:
            op["parameters"] = [{"name": n, "in": where, "required": where == "path",
                                 "schema": {"type": t}, "description": d}
                                for n, where, t, d in r.params]
        if r.body == "Upload":
            op["requestBody"] = {"required": True, "content": {"multipart/form-data": {
                "schema": {"type": "object", "required": ["file", "kind"], "properties": {
                    "file": {"type": "string", "format": "binary"},
                    "kind": {"type": "string", "description": "a kind of the procedure's "
                             "case_file (GET /api/v1/procedures/{kind})"},
                    "title": {"type": "string"}}}}}}
        elif r.body:
            op["requestBody"] = {"required": True, "content": {"application/json": {
                "schema": {"$ref": f"#/components/schemas/{r.body}"}}}}
        kind = r.tag
        if r.body == "Payload" and kind in KINDS:
            op["x-commands"] = sorted(Procedure.load(kind).commands)
        paths.setdefault(r.path, {})[r.method.lower()] = op
    for path, ops in paths.items():
        spec.path(path=path, operations=ops)
    return spec.to_dict()
