"""The machine-readable contracts (contracts/schemas/*.json, contracts/asyncapi.yaml)
are generated from the code and must not drift from it."""
from __future__ import annotations

import json
import re
from datetime import UTC, datetime

import pytest
import yaml

from services.police_handoff import domain
from shared import contracts
from shared.auth import Actor
from shared.envelope import EXCHANGE, dataschema_for, make_envelope
from shared.events import event_schemas, validate_payload
from shared.topology import CONSUMER_QUEUES, DLQ, DLX

try:  # optional: a full validator if the environment happens to have one
    import jsonschema
except ImportError:  # pragma: no cover - depends on the environment
    jsonschema = None

NOW = datetime(2024, 3, 4, 9, 0, tzinfo=UTC)
OFFICER = Actor("u1", "enforcement_unit", "lucheng-team-1", "lucheng")
HEAD = Actor("h1", "agency_head", "lucheng-agency", "lucheng")
DRAFT = {
    "case_number": "WZ-2024-001",
    "county": "lucheng",
    "summary": "班线客车严重超员",
    "facts": {"vehicle_category": "passenger_bus", "service_type": "passenger_transport",
              "rated_seats": 50, "passengers": 63},
    "parties": [{"name": "张三", "id_type": "resident_id", "id_number": "11010519491231002X"}],
    "team": [{"name": "李四", "badge_number": "330301"},
             {"name": "王五", "badge_number": "330302"}],
    "prior_penalties": [{"kind": "fine", "decision_number": "温交执罚〔2024〕1号",
                         "fine_yuan": "200.50"}],
}


# --------------------------------------------------------------------------- helpers

_JSON_TYPES = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
}


def check(schema: dict, value, root: dict | None = None, path: str = "$") -> list[str]:
    """A tiny JSON Schema check (the subset the generator emits): $ref, anyOf, type,
    enum, required, properties, items, lengths, pattern, minimum. Returns errors."""
    root = root or schema
    if "$ref" in schema:
        ref = schema["$ref"]
        assert ref == "#" or ref.startswith("#/$defs/"), ref
        target = root if ref == "#" else root["$defs"][ref.rsplit("/", 1)[1]]
        return check(target, value, root, path)
    if "anyOf" in schema:
        options = [check(s, value, root, path) for s in schema["anyOf"]]
        return [] if any(not o for o in options) else [f"{path}: matches no anyOf option"]
    types = schema.get("type")
    if types is not None:
        types = [types] if isinstance(types, str) else types
        if not any(_JSON_TYPES[t](value) for t in types):
            return [f"{path}: {value!r} is not of type {types}"]
    errors = []
    if "enum" in schema and value not in schema["enum"]:
        errors.append(f"{path}: {value!r} not in {schema['enum']}")
    if isinstance(value, dict):
        errors += [f"{path}: {name} is required" for name in schema.get("required", [])
                   if name not in value]
        for name, sub in schema.get("properties", {}).items():
            if name in value:
                errors += check(sub, value[name], root, f"{path}.{name}")
    if isinstance(value, list):
        if len(value) < schema.get("minItems", 0):
            errors.append(f"{path}: fewer than {schema['minItems']} items")
        for i, item in enumerate(value):
            errors += check(schema.get("items", {}), item, root, f"{path}[{i}]")
    if isinstance(value, str):
        if not schema.get("minLength", 0) <= len(value) <= schema.get("maxLength", len(value)):
            errors.append(f"{path}: length {len(value)} out of range")
        if "pattern" in schema and not re.search(schema["pattern"], value):
            errors.append(f"{path}: {value!r} does not match {schema['pattern']}")
    if _JSON_TYPES["number"](value) and value < schema.get("minimum", value):
        errors.append(f"{path}: {value} < {schema['minimum']}")
    return errors


def assert_valid(schema: dict, value) -> None:
    assert check(schema, value) == []
    if jsonschema is not None:
        jsonschema.Draft202012Validator(
            schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER,
        ).validate(value)


def refs(node) -> list[str]:
    if isinstance(node, dict):
        return [v for k, v in node.items() if k == "$ref"] + \
            [r for k, v in node.items() if k != "$ref" for r in refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in refs(v)]
    return []


def payloads() -> dict[str, dict]:
    """Real payloads from the police_handoff domain, round-tripped through JSON."""
    out = {}
    rec, step = domain.create("draft", OFFICER, DRAFT, NOW)
    out[step["event"]] = domain.event_payload(rec, step)
    rec, step = domain.act(rec, "request_approval", OFFICER, {"transfer_report": "移送报告"}, NOW)
    out[step["event"]] = domain.event_payload(rec, step)
    rec, step = domain.act(rec, "approve", HEAD, {"opinion": "同意移送"}, NOW)
    out[step["event"]] = domain.event_payload(rec, step)
    return {t: json.loads(json.dumps(p, ensure_ascii=False)) for t, p in out.items()}


@pytest.fixture(scope="module")
def schemas() -> dict[str, dict]:
    return contracts.json_schemas()


@pytest.fixture(scope="module")
def real_payloads() -> dict[str, dict]:
    return payloads()


# --------------------------------------------------------------------------- drift

def test_committed_contracts_are_generated_from_the_code():
    assert contracts.drift() == [], "run `python -m shared.contracts` (make contracts)"


def test_drift_names_each_changed_missing_and_stale_file(tmp_path):
    directory = tmp_path / "contracts"
    written = contracts.write(directory)
    assert len(written) == len(event_schemas()) + 4  # + envelope, asyncapi, review tables (2)
    assert contracts.drift(directory) == []

    changed = directory / "schemas" / "criminal_referral.filed.v1.json"
    doc = json.loads(changed.read_text(encoding="utf-8"))
    doc["properties"]["step"]["type"] = "string"
    changed.write_text(json.dumps(doc, sort_keys=True, indent=2) + "\n", encoding="utf-8")
    (directory / "schemas" / "criminal_referral.closed.v1.json").unlink()
    (directory / "schemas" / "criminal_referral.retired.v1.json").write_text("{}\n")
    with (directory / "asyncapi.yaml").open("a", encoding="utf-8") as fh:
        fh.write("x-extra: true\n")

    problems = contracts.drift(directory)
    assert sorted(problems) == sorted([
        "contracts/schemas/criminal_referral.filed.v1.json differs from the code",
        "contracts/schemas/criminal_referral.closed.v1.json is missing",
        ("contracts/schemas/criminal_referral.retired.v1.json is stale "
         "(no event type generates it)"),
        "contracts/asyncapi.yaml differs from the code",
    ])

    contracts.write(directory)  # rewrites the changed, restores the missing, drops the stale
    assert contracts.drift(directory) == []
    assert not (directory / "schemas" / "criminal_referral.retired.v1.json").exists()


def test_drift_of_an_empty_directory_lists_every_file(tmp_path):
    problems = contracts.drift(tmp_path / "contracts")
    assert len(problems) == len(event_schemas()) + 4
    assert all(p.endswith(" is missing") for p in problems)


def test_review_table_lists_every_deadline_step_and_rule_with_its_source(tmp_path):
    """Issue 22: one generated page a lawyer reviews; editing the YAML without
    `make contracts` is drift."""
    from shared.procedure import Procedure
    from shared.standards import judgment_rules
    page = contracts.standards_table()
    proc = Procedure.load("criminal_referral")
    for deadline_id, rule in proc.deadlines.items():
        line = next(x for x in page.splitlines() if x.startswith(f"| `{deadline_id}` |"))
        assert line.rstrip(" |").endswith(rule["article"].replace("|", "\\|")), line
    for command in proc.commands:
        assert f"| `{command}` |" in page
    for rule in judgment_rules().rules:
        line = next(x for x in page.splitlines() if x.startswith(f"| `{rule.id}` |"))
        assert rule.legal_basis in line
    assert "| `penalty_report` |" in page and "CRIMINAL_REFERRAL_PERIODS" in page
    assert "高检会〔2006〕2号 item 1" in page and "fraud_relatively_large_yuan" in page
    directory = tmp_path / "contracts"
    contracts.write(directory)
    table = directory / "standards" / "README.md"
    table.write_text(table.read_text(encoding="utf-8").replace("| 3d |", "| 7d |", 1),
                     encoding="utf-8")
    assert contracts.drift(directory) == ["contracts/standards/README.md differs from the code"]


def test_generation_is_deterministic():
    assert contracts.generate() == contracts.generate()


def test_check_flag_exits_1_on_drift_with_the_hint(monkeypatch, capsys):
    monkeypatch.setattr(contracts, "drift", lambda *a, **k: ["contracts/asyncapi.yaml is missing"])
    with pytest.raises(SystemExit) as exc:
        contracts.main(["--check"])
    assert exc.value.code == 1
    err = capsys.readouterr().err
    assert "contracts/asyncapi.yaml is missing" in err and "make contracts" in err

    monkeypatch.setattr(contracts, "drift", lambda *a, **k: [])
    contracts.main(["--check"])
    assert "in sync" in capsys.readouterr().out


def test_help():
    with pytest.raises(SystemExit) as exc:
        contracts.main(["--help"])
    assert exc.value.code == 0


# --------------------------------------------------------------------------- JSON Schemas

def test_every_event_type_has_a_schema_file_and_a_channel(schemas):
    doc = contracts.asyncapi()
    for event_type in event_schemas():
        assert (contracts.CONTRACTS_DIR / "schemas" / f"{event_type}.json").is_file()
        assert event_type in schemas
        assert event_type in doc["channels"]
    assert set(doc["channels"]) == set(event_schemas())
    assert (contracts.CONTRACTS_DIR / "schemas" / "cloudevents-envelope.json").is_file()


def test_schema_documents_are_standalone_draft_2020_12(schemas):
    for name, doc in schemas.items():
        assert doc["$schema"] == "https://json-schema.org/draft/2020-12/schema"
        assert doc["$id"] == dataschema_for(name)
        assert doc["title"] == name
        assert doc["type"] == "object"
        for ref in refs(doc):  # every ref is local and resolves
            assert ref == "#" or ref.removeprefix("#/$defs/") in doc.get("$defs", {}), ref
        assert "#/components" not in json.dumps(doc)
    assert schemas["cloudevents-envelope"]["description"].startswith("The CloudEvents")


def test_decimals_are_described_as_they_travel_as_strings(schemas):
    fine = schemas["criminal_referral.drafted.v1"]["$defs"]["PriorPenaltySchema"][
        "properties"]["fine_yuan"]
    assert fine["type"] == ["string", "null"]
    assert "minimum" not in fine


def test_schemas_validate_real_payloads(schemas, real_payloads):
    assert set(real_payloads) == {"criminal_referral.drafted.v1",
                                  "criminal_referral.approval_requested.v1",
                                  "criminal_referral.approved.v1"}
    for event_type, payload in real_payloads.items():
        assert_valid(schemas[event_type], payload)
        validate_payload(event_type, payload)  # and the marshmallow schema agrees
    drafted = real_payloads["criminal_referral.drafted.v1"]
    assert drafted["details"]["parties"][0]["name"] == "张三"
    assert real_payloads["criminal_referral.approved.v1"]["deadline"] is not None


def test_envelope_schema_validates_a_real_envelope(schemas, real_payloads):
    event_type = "criminal_referral.drafted.v1"
    env = make_envelope(event_type=event_type, source="/services/police_handoff",
                        subject="referral-1", data=real_payloads[event_type], sequence=1,
                        actor=OFFICER, time=NOW)
    env = json.loads(json.dumps(env, ensure_ascii=False))
    assert_valid(schemas["cloudevents-envelope"], env)
    assert env["dataschema"] == schemas[event_type]["$id"]


def test_the_check_rejects_broken_payloads(schemas, real_payloads):
    schema = schemas["criminal_referral.drafted.v1"]
    payload = real_payloads["criminal_referral.drafted.v1"]
    broken = {**payload, "step": "1", "details": {**payload["details"], "parties": []}}
    del broken["handoff_id"]
    errors = check(schema, broken)
    assert "$: handoff_id is required" in errors
    assert any(e.startswith("$.step:") for e in errors)
    assert "$.details.parties: fewer than 1 items" in errors
    assert check(schema, {**payload, "deadline": {"id": "x"}})  # nested required fields


# --------------------------------------------------------------------------- AsyncAPI

def test_asyncapi_document():
    doc = yaml.safe_load((contracts.CONTRACTS_DIR / "asyncapi.yaml").read_text("utf-8"))
    assert doc == contracts.asyncapi()
    assert doc["asyncapi"] == "2.6.0"
    assert doc["info"]["title"] == "Liandong event bus"
    assert doc["servers"]["production"] == {
        "url": "rabbitmq:5672", "protocol": "amqp", "protocolVersion": "0-9-1"}
    for event_type, channel in doc["channels"].items():
        amqp = channel["bindings"]["amqp"]
        assert amqp["is"] == "routingKey"
        assert amqp["exchange"]["name"] == EXCHANGE and amqp["exchange"]["type"] == "topic"
        message = channel["subscribe"]["message"]
        assert message["contentType"] == "application/cloudevents+json"
        assert message["payload"] == {"$ref": f"schemas/{event_type}.json"}
    for name in CONSUMER_QUEUES:
        queue = doc["x-queues"][name]
        assert queue["arguments"]["x-queue-type"] == "quorum"
        assert queue["arguments"]["x-dead-letter-exchange"] == DLX
        assert queue["arguments"]["x-delivery-limit"] >= 1
        assert all(b["exchange"] == EXCHANGE for b in queue["bindings"])
    assert doc["x-queues"][DLQ]["bindings"] == [{"exchange": DLX, "routingKey": "#"}]
    assert set(doc["x-exchanges"]) == {EXCHANGE, DLX}


def test_asyncapi_references_only_existing_schema_files():
    doc = yaml.safe_load((contracts.CONTRACTS_DIR / "asyncapi.yaml").read_text("utf-8"))
    found = refs(doc)
    assert len(found) >= len(event_schemas())
    for ref in found:
        assert not ref.startswith("#"), ref
        assert (contracts.CONTRACTS_DIR / ref).is_file(), f"{ref} does not exist"
