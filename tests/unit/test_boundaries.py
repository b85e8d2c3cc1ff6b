"""Trust at the boundaries (issue 23), in plain Python: identity binds data, named units
exist and are of the right kind, event types are bound to their publisher, inputs are
bounded, exports cannot carry formulas, times carry their offset, search is literal."""
from __future__ import annotations

import csv
import io
import json
from datetime import datetime, timedelta, timezone

import pytest
import yaml
from stdnum.iso7064 import mod_11_2

from services.market_referral import domain as market
from services.police_handoff import domain as police
from shared import boundaries, signing, units
from shared import envelope as env
from shared.auth import Actor
from shared.envelope import EnvelopeError
from shared.errors import InvalidInput, NotAllowed, Unauthenticated
from shared.schemas.common import COUNTIES
from shared.standards import CONTRACTS_DIR
from tests.helpers import (
    COUNTY_COMMAND,
    HEAD,
    MARKET,
    OTHER_HEAD,
    POLICE,
    TRANSFER,
    UNIT,
    draft_payload,
    market_payload,
    with_required_files,
)

T0 = datetime(2026, 3, 2, 1, 0, tzinfo=timezone.utc)


# ------------------------------------------------------------------ the table of units

def test_units_table_has_every_unit_the_demo_and_the_tests_use():
    table = units.load()
    assert len(table.by_id) >= 100
    for county in COUNTIES:
        for suffix, kind in (("command", "county_centre"), ("bureau", "agency_head"),
                             ("team-1", "enforcement"), ("psb", "police"),
                             ("procuratorate", "procuratorate"), ("court", "court"),
                             ("amr", "market_regulation")):
            assert units.kind(f"{county}-{suffix}") == kind, (county, suffix)
            assert units.county(f"{county}-{suffix}") == county
    demo = yaml.safe_load((CONTRACTS_DIR.parent / "deploy" / "users.demo.yaml").read_text())
    for name, user in demo["users"].items():
        unit = units.get(user["unit"])
        assert unit is not None and unit.role == user["role"], name


def test_units_agree_with_the_command_centres_reference():
    from services.command import reference
    for unit in reference.reference().units.values():
        mine = units.get(unit.id)
        assert mine is not None and mine.role == unit.role and mine.county == unit.county


@pytest.mark.parametrize("doc, problem", [
    ({"kinds": {"x": {"role": "wizard"}}, "units": []}, "unknown role"),
    ({"kinds": {"x": {"role": "police"}}, "units": [{"id": "a", "kind": "y"}]}, "unknown kind"),
    ({"kinds": {"x": {"role": "police"}},
      "units": [{"id": "a", "kind": "x"}, {"id": "a", "kind": "x"}]}, "used twice"),
    ({"kinds": {"x": {"role": "police"}},
      "units": [{"id": "a", "kind": "x", "county": "atlantis"}]}, "unknown county"),
])
def test_a_broken_units_table_is_refused_naming_the_entry(doc, problem):
    with pytest.raises(units.UnitsError, match=problem):
        units.parse(doc)


def test_acting_unit_checks_the_token_against_the_table():
    assert units.acting_unit(UNIT).id == "lucheng-team-1"
    with pytest.raises(NotAllowed, match="not a known unit"):
        units.acting_unit(Actor("x", "enforcement_unit", "no-such-team", "lucheng"))
    with pytest.raises(NotAllowed, match="does not act for"):
        units.acting_unit(Actor("x", "enforcement_unit", "lucheng-psb", "lucheng"))
    with pytest.raises(NotAllowed, match="is in lucheng"):
        units.acting_unit(Actor("x", "enforcement_unit", "lucheng-team-1", "ouhai"))


# ------------------------------------------------------------------ 1. identity binds data

def test_a_unit_cannot_file_a_case_under_another_county():
    with pytest.raises(NotAllowed) as err:
        police.create("draft", UNIT, draft_payload(county="ouhai"), T0)
    assert "county" in err.value.errors and "lucheng" in str(err.value.errors["county"])
    # its own county: filed, owned by its unit, approved by its own head only
    rec, _ = police.create("draft", UNIT, draft_payload(), T0)
    assert (rec["county"], rec["owner_unit"]) == ("lucheng", UNIT.unit)
    police.check_may_act(HEAD, rec)
    with pytest.raises(NotAllowed):
        police.check_may_act(OTHER_HEAD, rec)


def test_a_token_whose_unit_does_not_exist_cannot_file():
    ghost = Actor("x", "enforcement_unit", "ghost-team", "lucheng")
    with pytest.raises(NotAllowed, match="not a known unit"):
        police.create("draft", ghost, draft_payload(), T0)


def test_police_reverse_transfer_is_bound_to_its_county_and_a_real_team():
    payload = {"police_case_number": "P-1", "county": "lucheng", "target_unit": UNIT.unit,
               "summary": "不构成犯罪", "reason": "情节显著轻微",
               "parties": draft_payload()["parties"]}
    rec, _ = police.create("open_reverse_transfer", POLICE, payload, T0)
    assert rec["owner_unit"] == UNIT.unit
    with pytest.raises(NotAllowed):
        police.create("open_reverse_transfer", POLICE, {**payload, "county": "ouhai"}, T0)
    for target in ("no-such-team", "lucheng-psb", "ouhai-team-1"):
        with pytest.raises(InvalidInput) as err:
            police.create("open_reverse_transfer", POLICE, {**payload, "target_unit": target},
                          T0)
        assert "target_unit" in err.value.errors, target


def test_a_market_referral_is_bound_to_the_senders_county():
    with pytest.raises(NotAllowed) as err:
        market.create("send", UNIT, market_payload(county="ouhai"), T0)
    assert "county" in err.value.errors
    # a city-level market regulator serves every county; the receiving team serves it
    back = market_payload(county="ouhai", target_unit="ouhai-team-1", referral_kind="other",
                          documents=[{"kind": k, "title": k} for k in
                                     ("referral_letter", "case_description")])
    rec, _ = market.create("send_to_transport", MARKET, back, T0)
    assert (rec["county"], rec["owner_unit"]) == ("ouhai", "ouhai-team-1")
    with pytest.raises(InvalidInput) as err:
        market.create("send_to_transport", MARKET, {**back, "target_unit": "lucheng-team-1"},
                      T0)
    assert "target_unit" in err.value.errors


def test_a_step_command_on_the_create_route_is_a_422_not_a_crash():
    with pytest.raises(InvalidInput) as err:
        police.create("approve", UNIT, {"opinion": "同意"}, T0)
    assert "command" in err.value.errors


# ------------------------------------------------------------------ 4. named units

def _approved():
    rec, _ = police.create("draft", UNIT, draft_payload(), T0)
    rec = with_required_files(rec, T0)
    rec, _ = police.act(rec, "request_approval", UNIT, {"transfer_report": "报告"}, T0)
    rec, _ = police.act(rec, "approve", HEAD, {"opinion": "同意"}, T0)
    return rec


@pytest.mark.parametrize("field, value", [
    ("police_unit", "no-such-psb"), ("police_unit", "lucheng-team-1"),
    ("police_unit", "lucheng-procuratorate"), ("procuratorate_unit", "lucheng-psb"),
    ("procuratorate_unit", "nowhere"),
])
def test_a_transfer_names_a_real_police_unit_and_procuratorate(field, value):
    rec = _approved()
    with pytest.raises(InvalidInput) as err:
        police.act(rec, "transfer", UNIT, {**TRANSFER, field: value}, T0)
    assert field in err.value.errors


def test_a_transfer_to_a_real_police_unit_passes():
    new, _ = police.act(_approved(), "transfer", UNIT, TRANSFER, T0)
    assert new["counterpart_unit"] == POLICE.unit


@pytest.mark.parametrize("target", ["lucheng-team-2", "lucheng-psb", "no-such-amr",
                                    "lucheng-command"])
def test_a_market_referral_goes_only_to_a_market_regulator(target):
    with pytest.raises(InvalidInput) as err:
        market.create("send", UNIT, market_payload(target_unit=target), T0)
    assert "target_unit" in err.value.errors


def test_a_market_referral_to_the_sender_itself_is_refused():
    with pytest.raises(InvalidInput) as err:
        market.create("send_to_transport", MARKET,
                      market_payload(target_unit=MARKET.unit, referral_kind="other"), T0)
    assert "target_unit" in err.value.errors
    with pytest.raises(InvalidInput) as err:
        market.create("send", COUNTY_COMMAND, market_payload(target_unit=COUNTY_COMMAND.unit),
                      T0)
    assert "target_unit" in err.value.errors


# ------------------------------------------------------------------ 3. publisher binding

def test_a_publisher_key_cannot_sign_another_services_event_types(tmp_path):
    forged = env.make_envelope(event_type="criminal_referral.filed.v1",
                               source="/wenzhou/transport/market_referral", subject="r-1",
                               data={"x": 1}, sequence=1)
    signed = signing.sign(forged, tmp_path)            # a genuine market_referral signature
    assert signed["signer"] == "market_referral"
    with pytest.raises(EnvelopeError) as err:
        signing.verify(signed, tmp_path)
    assert "type" in err.value.errors
    assert "police_handoff" in str(err.value.errors["type"])


def test_each_publisher_still_verifies_its_own_types(tmp_path):
    doc = yaml.safe_load((CONTRACTS_DIR / "bus" / "publishers.yaml").read_text())
    for _service, spec in doc["publishers"].items():
        for prefix in spec.get("event_prefixes") or []:
            e = env.make_envelope(event_type=f"{prefix}.something.v1", source=spec["source"],
                                  subject="s", data={}, sequence=1)
            signing.verify(signing.sign(e, tmp_path), tmp_path)


# ------------------------------------------------------------------ 5, 6. bounded input

def test_deep_json_is_a_422_not_a_recursion_error():
    with pytest.raises(InvalidInput, match="nested too deeply"):
        boundaries.parse_json("[" * 10000 + "]" * 10000)
    with pytest.raises(InvalidInput, match="nested too deeply"):
        boundaries.parse_json(json.dumps({"a": _nest(17)}))
    assert boundaries.parse_json(json.dumps({"a": _nest(14)}))


def _nest(n):
    value = 1
    for _ in range(n):
        value = {"x": value}
    return value


@pytest.mark.parametrize("text", ['{"n": ' + "9" * 5000 + "}", '{"n": 1e1000000}',
                                  '{"n": NaN}', '{"n": -Infinity}',
                                  '{"n": 1' + "0" * 40 + "}"])
def test_huge_or_non_finite_numbers_are_a_422(text):
    with pytest.raises(InvalidInput):
        boundaries.parse_json(text)


def test_a_payload_nested_too_deep_or_too_big_is_refused_by_the_service_too():
    with pytest.raises(InvalidInput, match="nested too deeply"):
        police.create("draft", UNIT, draft_payload(facts=_nest(500)), T0)
    with pytest.raises(InvalidInput, match="too large"):
        police.create("draft", UNIT, draft_payload(junk="x" * (2 * 1024 * 1024)), T0)
    with pytest.raises(InvalidInput):
        police.create("draft", UNIT, draft_payload(facts={"n": 10 ** 5000}), T0)


@pytest.mark.parametrize("fine", ["1e1000000", "-1", "1e13", "NaN", "Infinity"])
def test_amounts_are_non_negative_and_bounded(fine):
    rec, _ = police.create("draft", UNIT, draft_payload(), T0)
    with pytest.raises(InvalidInput) as err:
        police.act(rec, "record_prior_penalty", UNIT, {"penalties": [
            {"kind": "fine", "decision_number": "D-1", "fine_yuan": fine}]}, T0)
    assert "penalties" in err.value.errors


def test_dates_lie_in_2000_to_2099():
    rec = _approved()
    for bad in ("9999-12-31", "1999-12-31", "2100-01-01"):
        with pytest.raises(InvalidInput) as err:
            police.act(rec, "transfer", UNIT,
                       {**TRANSFER, "procuratorate_copy": {"sent_on": bad}}, T0)
        assert "procuratorate_copy" in err.value.errors


def test_a_joint_action_window_ending_in_9999_is_a_422():
    from services.command import joint_action
    from tests.helpers import CITY
    now = datetime.now(timezone.utc)
    payload = {"title": "清查", "domain": "key_vehicles", "area": ["lucheng"],
               "window_start": now.isoformat(), "window_end": "9999-12-31T23:59:00+08:00",
               "instructions": "检查", "recipients": ["lucheng-command"]}
    with pytest.raises(InvalidInput) as err:
        joint_action.create("dispatch", CITY, payload, now)
    assert "window_end" in err.value.errors


# ------------------------------------------------------------------ 11. data validity

def _resident_id(birth: str) -> str:
    body = f"110105{birth}002"
    return body + mod_11_2.calc_check_digit(body)


@pytest.mark.parametrize("id_type, number", [
    ("uscc", "000000000000000000"), ("resident_id", _resident_id("20991231")),
    ("resident_id", _resident_id("18991231")),
])
def test_codes_that_cannot_exist_are_refused(id_type, number):
    party = {"name": "甲", "role": "driver", "id_type": id_type, "id_number": number}
    with pytest.raises(InvalidInput) as err:
        police.create("draft", UNIT, draft_payload(parties=[party]), T0)
    assert "parties" in err.value.errors


# ------------------------------------------------------------------ 2. exports

@pytest.mark.parametrize("text", ['=HYPERLINK("http://evil","x")', "+1+1", "-2+3", "@SUM(A1)",
                                  "\tcmd", "\rcmd"])
def test_spreadsheet_cells_never_start_a_formula(text):
    assert boundaries.spreadsheet_cell(text) == "'" + text
    assert boundaries.spreadsheet_cell(42) == 42
    assert boundaries.spreadsheet_cell("WZ-1") == "WZ-1"


def test_board_exports_neutralise_formulas_in_csv_and_xlsx():
    from openpyxl import load_workbook

    from services.gateway.service import to_csv, to_xlsx
    row = {"handoff_id": "h1", "kind": "criminal_referral",
           "case_number": '=HYPERLINK("http://evil","x")', "county": "lucheng",
           "owner_unit": "@lucheng-team-1", "state": "+drafted", "deadline": None}
    cells = next(r for r in csv.reader(io.StringIO(to_csv([row]).decode("utf-8-sig")))
                 if r[0] == "h1")
    assert cells[2] == '\'=HYPERLINK("http://evil","x")'
    assert cells[5] == "'@lucheng-team-1" and cells[7] == "'+drafted"
    ws = load_workbook(io.BytesIO(to_xlsx([row]))).active
    values = [c.value for c in list(ws.iter_rows())[1]]
    assert values[2] == '\'=HYPERLINK("http://evil","x")'
    assert all(c.data_type != "f" for c in list(ws.iter_rows())[1])


# ------------------------------------------------------------------ 5. tokens

def test_a_non_ascii_token_is_a_401():
    from shared.auth import verify_token
    with pytest.raises(Unauthenticated, match="ASCII"):
        verify_token("é" * 20)


# ------------------------------------------------------------------ 7, 9. times and search

def test_timeline_times_carry_their_utc_offset(tmp_path):
    from shared.handoffs import HandoffStore
    store = HandoffStore("police_handoff", "/wenzhou/transport/police_handoff",
                         f"sqlite:///{tmp_path}/t.db")
    rec, step = police.create("draft", UNIT, draft_payload(), T0)
    with store.store.transaction() as s:
        store.save(s, rec, step, police.event_payload(rec, step), 0)
    with store.store.session() as s:
        timeline = store.timeline(s, rec["id"])
    store.store.dispose()
    at = datetime.fromisoformat(timeline[0]["at"])
    assert at.utcoffset() == timedelta(0) and at == T0


def test_board_search_is_literal():
    from sqlalchemy import create_engine, insert
    from sqlalchemy.orm import Session

    from services.tracker import store as st
    engine = create_engine("sqlite://")
    st.metadata.create_all(engine)
    with Session(engine) as s, s.begin():
        for i, text in enumerate(["wz-1 浙c12345 张三", "wz-2 100% 李四", "wz-3 a_b"]):
            s.execute(insert(st.handoffs).values(
                handoff_id=f"h{i}", kind="criminal_referral", case_number=f"C{i}",
                county="lucheng", owner_unit="u", units=[], state="s", open=True, step=1,
                search=text, created_at=T0, updated_at=T0))
    with Session(engine) as s:
        def found(q):
            return sorted(r["handoff_id"] for r in st.board(s, T0, q=q))
        assert found("%") == ["h1"]
        assert found("_") == ["h2"]
        assert found("张三") == ["h0"]
    engine.dispose()


def test_a_body_without_content_length_is_read_only_up_to_the_routes_maximum():
    from werkzeug.test import EnvironBuilder
    from werkzeug.wrappers import Request

    from services.gateway.service import MAX_BODY_KEY, _body
    from shared.errors import PayloadTooLarge
    environ = EnvironBuilder(method="POST", input_stream=io.BytesIO(
        b'{"a": "' + b"x" * 5000 + b'"}')).get_environ()
    environ.pop("CONTENT_LENGTH", None)
    environ.update({"wsgi.input_terminated": True, MAX_BODY_KEY: 100})   # chunked
    with pytest.raises(PayloadTooLarge):
        _body(Request(environ))
    environ = EnvironBuilder(method="POST", data=b'{"a": 1}').get_environ()
    assert _body(Request(environ)) == {"a": 1}


@pytest.mark.parametrize("value", ["9999-12-31", "1900-01-01", "2026-13-01", "²"])
def test_statistics_periods_are_real_dates_of_this_century(value):
    from services.tracker.service import _date
    with pytest.raises(InvalidInput):
        _date(value, "start")
    assert _date("2026-03-02", "start").tzinfo is not None
