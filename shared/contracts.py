"""The machine-readable contracts, generated from the code.

The marshmallow schemas in ``shared/schemas`` (registered per event type in
``shared.events``), the CloudEvents envelope (``shared.envelope``) and the RabbitMQ
topology (``shared.topology``) are the one source of truth; this module turns them into

* ``contracts/schemas/<type>.json`` — a standalone JSON Schema (draft 2020-12) of each
  event type's payload (the envelope's ``data``), plus ``cloudevents-envelope.json``;
* ``contracts/asyncapi.yaml`` — an AsyncAPI 2.6.0 description of the event bus;
* ``contracts/standards/README.md`` — the criminal referral's deadlines, steps and
  judgment rules with their source documents and articles, on one page for a lawyer
  (from ``contracts/standards/criminal_referral.yaml`` and ``judgment.yaml``).

Usage::

    python -m shared.contracts           # (re)write the files
    python -m shared.contracts --check   # exit 1 if the files differ from the code

The unit tests fail when the committed files drift from the code.
"""
from __future__ import annotations

import argparse
import copy
import json
import sys
from pathlib import Path

import yaml
from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin, OpenAPIConverter
from apispec.ext.marshmallow.common import make_schema_key, resolve_schema_instance
from marshmallow import fields

from shared.envelope import EXCHANGE, EnvelopeSchema, dataschema_for
from shared.events import KINDS, event_schemas
from shared.procedure import Procedure, periods_env
from shared.standards import CONTRACTS_DIR, JudgmentRules, load_standard
from shared.topology import (
    CONSUMER_QUEUES,
    DLQ,
    DLX,
    consumer_queue,
    dead_letter_exchange,
    dead_letter_queue,
    events_exchange,
)

__all__ = ["CONTRACTS_DIR", "ENVELOPE_KEY", "asyncapi", "drift", "json_schemas", "main",
           "write"]

JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
ENVELOPE_KEY = "cloudevents-envelope"
CONTENT_TYPE = "application/cloudevents+json"
ASYNCAPI_FILE = "asyncapi.yaml"
SCHEMAS_DIR = "schemas"
STANDARDS_TABLE = "standards/README.md"
ALERTS_TABLE = "standards/ALERTS.md"
_COMPONENTS_PREFIX = "#/components/schemas/"
# What str(Decimal) can produce for a finite number (marshmallow rejects NaN/Infinity).
DECIMAL_PATTERN = r"^[-+]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][-+]?[0-9]+)?$"


# --------------------------------------------------------------------------- JSON Schema

class _Converter(OpenAPIConverter):
    """apispec's converter, describing the wire format where it differs from the default."""

    def field2type_and_format(self, field, **kwargs):
        # A Decimal(as_string=True) travels as a JSON string ("12.50"), not a number.
        if isinstance(field, fields.Decimal) and field.as_string:
            return {"type": "string", "format": "decimal", "pattern": DECIMAL_PATTERN}
        return super().field2type_and_format(field, **kwargs)


class _Plugin(MarshmallowPlugin):
    Converter = _Converter


class _NameResolver:
    """Gives each distinct nested schema one stable, unique component name within a
    document: the class name, else module + class name, else a numbered variant.

    apispec calls it once per distinct schema (class + modifiers such as ``only``)."""

    def __init__(self, reserved: str):
        self.taken = {reserved}

    def __call__(self, schema) -> str:
        instance = resolve_schema_instance(schema)
        cls = type(instance)
        base = cls.__name__
        if make_schema_key(instance)[1:] != make_schema_key(cls())[1:]:
            base += "Partial"  # same class with modifiers: a different shape
        candidates = [base, f"{cls.__module__.rsplit('.', 1)[-1]}.{base}"]
        candidates += [f"{candidates[1]}{n}" for n in range(2, 1000)]
        name = next(c for c in candidates if c not in self.taken)
        self.taken.add(name)
        return name


def _rewrite_refs(node, root: str):
    """Point component refs at ``$defs`` (and the root component at ``#``)."""
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str) and value.startswith(_COMPONENTS_PREFIX):
                name = value[len(_COMPONENTS_PREFIX):]
                out[key] = "#" if name == root else f"#/$defs/{name}"
            else:
                out[key] = _rewrite_refs(value, root)
        return out
    if isinstance(node, list):
        return [_rewrite_refs(v, root) for v in node]
    return node


def _first_doc_line(cls: type) -> str | None:
    doc = cls.__dict__.get("__doc__")  # the class's own docstring, not an inherited one
    if not doc or not doc.strip():
        return None
    return doc.strip().splitlines()[0].strip()


def schema_document(schema_cls: type, *, schema_id: str, title: str) -> dict:
    """A standalone JSON Schema (draft 2020-12) of one marshmallow schema class."""
    root = schema_cls.__name__
    spec = APISpec(title=title, version="1.0.0", openapi_version="3.1.0",
                   plugins=[_Plugin(schema_name_resolver=_NameResolver(root))])
    spec.components.schema(root, schema=schema_cls)
    components = copy.deepcopy(spec.to_dict()["components"]["schemas"])
    body = _rewrite_refs(components.pop(root), root)
    doc = {"$schema": JSON_SCHEMA_DIALECT, "$id": schema_id, "title": title}
    description = _first_doc_line(schema_cls)
    if description:
        doc["description"] = description
    doc.update(body)
    if components:
        doc["$defs"] = {name: _rewrite_refs(d, root) for name, d in sorted(components.items())}
    return doc


def json_schemas() -> dict[str, dict]:
    """Event type (and ``cloudevents-envelope``) -> JSON Schema document."""
    docs = {event_type: schema_document(cls, schema_id=dataschema_for(event_type),
                                        title=event_type)
            for event_type, cls in event_schemas().items()}
    docs[ENVELOPE_KEY] = schema_document(
        EnvelopeSchema, schema_id=dataschema_for(ENVELOPE_KEY), title=ENVELOPE_KEY)
    return docs


# --------------------------------------------------------------------------- AsyncAPI

def _exchange(exchange) -> dict:
    return {"name": exchange.name, "type": exchange.type, "durable": bool(exchange.durable),
            "autoDelete": bool(exchange.auto_delete), "vhost": "/"}


def _queue(queue, service: str | None) -> dict:
    bindings = [{"exchange": b.exchange.name, "routingKey": b.routing_key}
                for b in queue.bindings]
    if not bindings and queue.exchange is not None and queue.exchange.name:
        bindings = [{"exchange": queue.exchange.name, "routingKey": queue.routing_key}]
    out = {"service": service} if service else {}
    out.update({
        "durable": bool(queue.durable), "autoDelete": bool(queue.auto_delete),
        "bindings": bindings, "arguments": dict(queue.queue_arguments or {}),
    })
    return out


def _routing_key_matches(pattern: str, key: str) -> bool:
    """AMQP topic matching: ``*`` is one word, ``#`` zero or more."""
    def match(p: list[str], k: list[str]) -> bool:
        if not p:
            return not k
        if p[0] == "#":
            return any(match(p[1:], k[i:]) for i in range(len(k) + 1))
        return bool(k) and p[0] in ("*", k[0]) and match(p[1:], k[1:])
    return match(pattern.split("."), key.split("."))


def _steps() -> dict[str, dict]:
    """Event type -> the procedure step (from the standards) that emits it."""
    steps: dict[str, dict] = {}
    for kind in KINDS:
        standard = load_standard(kind)
        for step in standard.get("creations", []) + standard["transitions"]:
            steps.setdefault(step["event"], step)
    return steps


def _channel(event_type: str, step: dict | None) -> dict:
    message = {
        "name": event_type,
        "title": event_type,
        "contentType": CONTENT_TYPE,
        "payload": {"$ref": f"{SCHEMAS_DIR}/{event_type}.json"},
    }
    operation = {"operationId": "on_" + event_type.replace(".", "_")}
    if step:
        operation["summary"] = step.get("title") or step["command"]
        operation["x-command"] = step["command"]
        operation["x-roles"] = list(step.get("roles", []))
        if step.get("article"):
            operation["x-article"] = str(step["article"])
    operation["message"] = message
    consumers = [name for name, (_service, patterns) in CONSUMER_QUEUES.items()
                 if any(_routing_key_matches(p, event_type) for p in patterns)]
    return {
        "description": (f"Events of type {event_type}, published to the {EXCHANGE} "
                        f"exchange with routing key {event_type}. The message is a "
                        "CloudEvents envelope; the payload schema describes its data."),
        "bindings": {"amqp": {
            "is": "routingKey",
            "exchange": {"name": EXCHANGE, "type": "topic", "durable": True,
                         "autoDelete": False, "vhost": "/"},
            "bindingVersion": "0.2.0",
        }},
        "subscribe": operation,
        "x-consumer-queues": consumers,
    }


def asyncapi() -> dict:
    """The AsyncAPI 2.6.0 document of the event bus."""
    steps = _steps()
    queues = {name: _queue(consumer_queue(name), service)
              for name, (service, _patterns) in CONSUMER_QUEUES.items()}
    queues[DLQ] = _queue(dead_letter_queue(), None)
    queues[DLQ]["description"] = (
        f"Dead letters: messages rejected, or redelivered too often, by a consumer queue "
        f"(dead-lettered through {DLX}).")
    return {
        "asyncapi": "2.6.0",
        "id": "urn:liandong:event-bus",
        "info": {
            "title": "Liandong event bus",
            "version": "1.0.0",
            "description": (
                "Events of the Liandong (联动) cross-agency coordination bus. Every message "
                "is a CloudEvents 1.0 envelope in structured JSON mode "
                f"(schemas/{ENVELOPE_KEY}.json), published to the topic exchange "
                f"{EXCHANGE} with the event type as routing key; the envelope's "
                "`dataschema` is the $id of the payload schema. Consumers read tolerantly: "
                "unknown fields are ignored. Generated by `python -m shared.contracts`; "
                "do not edit by hand."),
        },
        "servers": {
            "production": {"url": "rabbitmq:5672", "protocol": "amqp",
                           "protocolVersion": "0-9-1"},
        },
        "defaultContentType": CONTENT_TYPE,
        "channels": {event_type: _channel(event_type, steps.get(event_type))
                     for event_type in event_schemas()},
        "components": {
            "schemas": {"CloudEventsEnvelope": {"$ref": f"{SCHEMAS_DIR}/{ENVELOPE_KEY}.json"}},
        },
        "x-exchanges": {
            EXCHANGE: {**_exchange(events_exchange), "description": "all events"},
            DLX: {**_exchange(dead_letter_exchange), "description": "dead letters"},
        },
        "x-queues": queues,
    }


# --------------------------------------------------------------------------- review table

def _cell(value) -> str:
    """Text fit for one Markdown table cell."""
    if value is None or value == "" or value == []:
        return "—"
    if isinstance(value, (list, tuple)):
        value = ", ".join(str(v) for v in value)
    return " ".join(str(value).split()).replace("|", "\\|")


def _table(header: list[str], rows: list[list]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return lines + [""]


def _procedure_tables(proc: Procedure) -> list[str]:
    """A procedure's deadlines and steps, each with its source."""
    out = ["### Deadlines" if proc.kind != "criminal_referral" else "## Deadlines", ""]
    rows = []
    for deadline_id, rule in proc.deadlines.items():
        period = str(rule["period"])
        if rule.get("configurable"):
            period += f" (local reminder; `{periods_env(proc.kind)}`)"
        obligation = rule.get("obligation", "must")
        if rule.get("tracked") is False:
            obligation += " (only when it applies)"
        rows.append([f"`{deadline_id}`", rule["title"], period, rule.get("from"),
                     rule.get("actor"), obligation, rule.get("article")])
    out += _table(["deadline", "what", "period", "counted from", "who", "obligation",
                   "source"], rows)
    out += ["### Steps" if proc.kind != "criminal_referral" else "## Steps", ""]
    rows = []
    for row in proc.table():
        target = row["to"] or ", ".join(f"{k} → {v}" for k, v in row["outcomes"].items())
        starts = list(row["starts"]) + [f"{k}: {v}" for k, v in row["outcome_starts"].items()]
        rows.append([f"`{row['command']}`", row["title"], ", ".join(row["from"]) or "(new)",
                     target, row["roles"], starts, row["satisfies"],
                     [f"k: {c}" for c in row["keeps"]] + [f"s: {c}" for c in row["stops"]],
                     row["article"]])
    out += _table(["step", "what", "from", "to", "who", "starts", "meets",
                   "keeps (k) / stops (s)", "source"], rows)
    return out


def standards_table() -> str:
    """The criminal referral's deadlines and steps and the judgment rules, each with its
    source document and article: one page a lawyer can review (generated; do not edit)."""
    proc = Procedure(load_standard("criminal_referral"))
    rules = JudgmentRules.load()
    doc = proc.doc
    out = [
        "# 行刑衔接：期限、步骤与判定标准一览 (criminal referral: deadlines, steps, rules)",
        "",
        "Generated by `make contracts` (`python -m shared.contracts`) from "
        "`criminal_referral.yaml`, `supervision_inquiry.yaml` and `judgment.yaml` in this "
        "folder: do not edit here, "
        "correct the YAML. `python -m shared.contracts --check` fails when this page and "
        "the YAML differ. A bare article number is one of State Council Decree 310 (2001, "
        "revised 2020); the YAML headers list every source read and how.",
        "",
    ]
    out += _procedure_tables(proc)
    out += ["## Documents of a transfer", ""]
    rows = [[f"`{d['id']}`", d["title"], d["title_en"], d["article"]]
            for d in doc["documents"]]
    copy = doc["procuratorate_copy"]
    rows.append(["`procuratorate_copy`", copy["title"], copy["title_en"], copy["article"]])
    out += _table(["document", "title", "in English", "source"], rows)
    inquiry = Procedure(load_standard("supervision_inquiry"))
    out += ["## 以罚代刑 supervision: the procuratorate's inquiry (`supervision_inquiry.yaml`)",
            "", "Periods marked *local reminder* are local choices: no legal text located "
            "sets them (see the YAML's header).", ""]
    out += _procedure_tables(inquiry)
    out += ["## Judgment rules (判定标准)", "",
            "A rule that matches is a recommendation naming its basis, never a transfer; "
            "the thresholds' sources say when an official text was not located.", ""]
    rows = [[f"`{r.id}`", r.title, r.route, r.suspected_offence, r.legal_basis,
             r.threshold_source] for r in rules.rules]
    out += _table(["rule", "what", "route", "suspected offence", "legal basis",
                   "threshold and its source"], rows)
    out += ["## Parameters of the judgment rules", ""]
    rows = [[f"`{p.name}`", p.description, p.default, f"{p.minimum}–{p.maximum}", p.unit,
             p.source] for p in rules.parameters.values()]
    out += _table(["parameter", "what", "value", "allowed range", "unit", "source"], rows)
    return "\n".join(out)


def alerts_table() -> str:
    """The kinds of online alert with their routing, periods per urgency and sources, and
    the alert task's steps: one page to confirm (generated; do not edit)."""
    doc = load_standard("alerts")
    proc = Procedure(load_standard("alert_task"))
    out = ["# 线上预警 → 线下处置：预警类型、派单规则与期限一览 (alerts: kinds, routing, periods)",
           "",
           "Generated by `make contracts` from `alerts.yaml` and `alert_task.yaml` in this "
           "folder: do not edit here, correct the YAML. **Every period is a local choice to "
           "confirm**: no legal text fixing them was located (`source` says so per kind). "
           f"Repeats of a vehicle/vessel within {doc['dedupe_window']} join its open task; "
           "a missed ack or arrival escalates to the county centre, then to the city centre "
           f"{doc['escalation']['city_after']} later.", "", "## Kinds", ""]
    rows = []
    for kind_id, k in doc["kinds"].items():
        periods = "; ".join(f"{u}: ack {p['ack']}, arrive {p['arrive']}, feedback "
                            f"{p['feedback']}" for u, p in k["periods"].items())
        urgent = k.get("urgency", {}).get("urgent_when")
        rows.append([f"`{kind_id}`", k["title"], k["domain"], k["handler_role"], k["routing"],
                     k["target"], periods,
                     f"{urgent['field']} ≥ {urgent['at_least']}" if urgent else "—",
                     k.get("judgment_rules"), k.get("case_kinds"), k["source"]])
    out += _table(["kind", "what", "domain", "handled by", "routed by", "same target",
                   "periods", "urgent when", "judgment rules", "cases it opens", "source"],
                  rows)
    out += ["## Steps of a task", ""]
    out += _table(["step", "what", "from", "to", "who", "starts", "meets"],
                  [[f"`{r['command']}`", r["title"], ", ".join(r["from"]) or "(new)", r["to"],
                    r["roles"], r["starts"], r["satisfies"]] for r in proc.table()])
    return "\n".join(out)


# --------------------------------------------------------------------------- files

def _json_text(doc: dict) -> str:
    return json.dumps(doc, sort_keys=True, indent=2, ensure_ascii=False) + "\n"


def _yaml_text(doc: dict) -> str:
    return yaml.safe_dump(doc, allow_unicode=True, sort_keys=False, width=100)


def generate() -> dict[str, str]:
    """Relative path (under the contracts directory) -> generated file text."""
    files = {f"{SCHEMAS_DIR}/{name}.json": _json_text(doc)
             for name, doc in json_schemas().items()}
    files[ASYNCAPI_FILE] = _yaml_text(asyncapi())
    files[STANDARDS_TABLE] = standards_table()
    files[ALERTS_TABLE] = alerts_table()
    return files


def _stale(directory: Path, files: dict[str, str]) -> list[Path]:
    schemas_dir = directory / SCHEMAS_DIR
    if not schemas_dir.is_dir():
        return []
    return sorted(p for p in schemas_dir.glob("*.json")
                  if f"{SCHEMAS_DIR}/{p.name}" not in files)


def write(directory: Path | str = CONTRACTS_DIR) -> list[Path]:
    """Write every generated contract under ``directory``; remove stale schema files.
    Returns the paths written."""
    directory = Path(directory)
    files = generate()
    written = []
    for rel, text in files.items():
        path = directory / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        written.append(path)
    for path in _stale(directory, files):
        path.unlink()
    return written


def drift(directory: Path | str = CONTRACTS_DIR) -> list[str]:
    """Differences between the generated contracts and the files in ``directory``;
    an empty list means they are in sync."""
    directory = Path(directory)
    files = generate()
    shown = directory.name
    problems = []
    for rel, text in files.items():
        path = directory / rel
        if not path.is_file():
            problems.append(f"{shown}/{rel} is missing")
        elif path.read_text(encoding="utf-8") != text:
            problems.append(f"{shown}/{rel} differs from the code")
    for path in _stale(directory, files):
        problems.append(f"{shown}/{SCHEMAS_DIR}/{path.name} is stale "
                        "(no event type generates it)")
    return problems


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m shared.contracts",
        description="Generate contracts/schemas/*.json (JSON Schema) and "
                    "contracts/asyncapi.yaml (AsyncAPI) from the code.")
    parser.add_argument("--check", action="store_true",
                        help="write nothing; list the differences and exit 1 if the "
                             "files are out of date")
    args = parser.parse_args(argv)
    if args.check:
        problems = drift()
        if problems:
            for line in problems:
                print(line, file=sys.stderr)
            print("contracts are out of date: run `make contracts`", file=sys.stderr)
            raise SystemExit(1)
        print("contracts are in sync with the code")
        return
    root = CONTRACTS_DIR.parent
    for path in write():
        try:
            print(f"wrote {path.relative_to(root)}")
        except ValueError:
            print(f"wrote {path}")


if __name__ == "__main__":
    main()
