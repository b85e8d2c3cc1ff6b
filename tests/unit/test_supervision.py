"""以罚代刑 supervision in plain Python: reading import files (CSV, GB18030, XLSX, Chinese
headers), row errors with line, field and reason, the judgment standards on each
decision, which criminal referral covers a decision, one import as one transaction
(idempotent when repeated), and the inquiry procedure (contracts/standards/
supervision_inquiry.yaml) with its parties and clocks."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import func, select

from services.supervision import domain, importer, penalties, samples
from services.supervision import store as st
from shared.auth import Actor
from shared.errors import InvalidInput, InvalidTransition, NotAllowed
from shared.events import validate_payload
from shared.handoffs import HandoffStore
from shared.standards import CONTRACTS_DIR
from tests.helpers import COORDINATOR, HEAD, OTHER_HEAD, POLICE, PROCURATORATE, UNIT

T0 = datetime(2026, 3, 2, 2, 0, tzinfo=timezone.utc)  # Monday 10:00 Beijing
SAMPLE = CONTRACTS_DIR / "supervision" / "sample.csv"


def _rows(filename: str, content: bytes) -> list[tuple[int, dict]]:
    return [(line, penalties.from_cells(raw))
            for line, raw in penalties.read_file(filename, content)]


# ------------------------------------------------------------------ reading files

def test_the_sample_file_reads_and_two_decisions_meet_a_criminal_threshold():
    good, errors, rejected = importer.check_rows(_rows("sample.csv", SAMPLE.read_bytes()))
    assert errors == [] and rejected == set()
    suspects = {n: [m["rule_id"] for m in d["matches"]] for n, (_l, d) in good.items()
                if d["matches"]}
    assert suspects == {"温鹿交执罚〔2026〕101号": ["passenger_overcapacity"],
                        "温鹿交执罚〔2026〕103号": ["serious_speeding"]}
    first = good["温鹿交执罚〔2026〕101号"][1]
    assert first["parties"] == [{"name": "王某", "id_number": "330302198801012345"},
                                {"name": "温州某客运有限公司", "id_number": None}]
    assert first["fine_yuan"] == "2000.00"
    match = first["matches"][0]   # the threshold crossed and its basis
    assert "excess(passengers=65, rated_seats=50) = 15 >= 15" in match["threshold_crossed"]
    assert "133-1" in match["legal_basis"] and match["threshold_source"]


def test_63_people_on_50_seats_and_56_percent_on_a_highway_are_not_candidates():
    assert penalties.evaluate(samples.UNDER[0]) == []
    assert penalties.evaluate(samples.UNDER[1]) == []
    assert [m["rule_id"] for m in penalties.evaluate(samples.OVER[0])] == \
        ["passenger_overcapacity"]


def test_chinese_headers_and_gb18030_as_excel_saves_csv_on_a_chinese_windows():
    text = ("案件编号,处罚决定日期,县区,执法单位,当事人,处罚内容\n"
            "温鹿交执罚〔2026〕9号,2026-03-02,lucheng,lucheng-bureau,王某,警告\n")
    rows = penalties.read_file("决定.csv", text.encode("gb18030"))
    assert rows == [(2, {"case_number": "温鹿交执罚〔2026〕9号", "decided_on": "2026-03-02",
                         "county": "lucheng", "unit": "lucheng-bureau", "parties": "王某",
                         "penalty": "警告"})]


def test_a_file_without_a_required_column_is_refused_naming_the_column():
    with pytest.raises(InvalidInput) as caught:
        penalties.read_file("x.csv", b"case_number,county\nA,lucheng\n")
    assert "decided_on" in caught.value.errors["header"][0]
    with pytest.raises(InvalidInput):
        penalties.read_file("x.pdf", b"%PDF-1.4")
    with pytest.raises(InvalidInput):
        penalties.read_file("x.xlsx", b"PK\x03\x04 not really a zip")


def test_each_bad_row_is_reported_with_its_line_field_and_reason():
    rows, _over, bad_lines = samples.decisions(rows=40, bad=10, over=2)
    good, errors, rejected = importer.check_rows(_rows("d.csv", samples.to_csv(rows)))
    assert rejected == set(bad_lines)
    by_line = {e["line"]: e for e in errors}
    fields = {by_line[line]["field"].split(".")[0] for line in bad_lines}
    assert fields == {"decided_on", "county", "case_number", "facts", "fine_yuan",
                      "penalty", "parties", "unit"}
    assert all(e["reason"] for e in errors)
    facts_errors = [e for e in errors if e["field"].startswith("facts")]
    assert {e["field"] for e in facts_errors} == {"facts", "facts.passenger_count",
                                                  "facts.passengers"}
    assert any("not a JSON object" in e["reason"] for e in facts_errors)
    assert len(good) == 30


def test_a_case_number_twice_in_one_import_is_an_error_on_its_second_line():
    rows, _o, _b = samples.decisions(rows=3, bad=0, over=0)
    rows[2]["case_number"] = rows[0]["case_number"]
    _good, errors, rejected = importer.check_rows(_rows("d.csv", samples.to_csv(rows)))
    assert rejected == {4}
    assert errors == [{"line": 4, "field": "case_number",
                       "reason": "repeats line 2 of this import"}]


def test_5000_row_xlsx_with_20_bad_rows_and_30_over_a_threshold():
    rows, over, bad_lines = samples.decisions()
    content = samples.to_xlsx(rows)
    good, errors, rejected = importer.check_rows(_rows("decisions.xlsx", content))
    assert sorted(rejected) == sorted(bad_lines) and len(rejected) == 20
    assert sorted(n for n, (_l, d) in good.items() if d["matches"]) == sorted(over)
    assert len(over) == 30 and len(good) == 4980


def test_the_layout_document_lists_every_column():
    text = (CONTRACTS_DIR / "supervision" / "README.md").read_text("utf-8")
    for field, title, _required, _what in penalties.COLUMNS:
        assert f"| `{field}` | {title} |" in text


# ------------------------------------------------------------------ matching referrals

def _decision(**over):
    base = {"case_number": "D-1", "plate": "浙C 12345", "county": "lucheng",
            "parties": [{"name": "张 三", "id_number": None}]}
    return {**base, **over}


def _referral(**over):
    base = {"referral_id": "r1", "case_number": "WZ-1", "plate_key": "浙C12345",
            "party_keys": penalties.party_keys([{"name": "张三",
                                                 "id_number": "11010519491231002X"}])}
    return {**base, **over}


def test_a_referral_covers_a_decision_by_case_number_or_by_plate_and_party():
    assert penalties.covers(_referral(case_number="D-1"), _decision()) == "case_number"
    assert penalties.covers(_referral(), _decision()) == "plate_and_party"
    by_id = _decision(parties=[{"name": "某人", "id_number": "11010519491231002x"}])
    assert penalties.covers(_referral(), by_id) == "plate_and_party"


def test_the_plate_alone_or_the_party_alone_does_not_cover_a_decision():
    assert penalties.covers(_referral(), _decision(parties=[{"name": "李四"}])) is None
    assert penalties.covers(_referral(plate_key="浙C99999"), _decision()) is None
    assert penalties.covers(_referral(), _decision(plate=None)) is None


def test_candidate_status_and_statistics():
    suspect = {"case_number": "D-1", "matches": [{"rule_id": "passenger_overcapacity"}]}
    assert domain.status(suspect, [], [])["candidate"] is True
    covered = domain.status(suspect, [_referral(case_number="D-1", state="draft")], [])
    assert covered["candidate"] is False
    assert covered["referred_by"][0]["matched_by"] == "case_number"
    plain = {"case_number": "D-2", "matches": []}
    assert domain.status(plain, [], [])["candidate"] is False
    stats = domain.statistics(10, [suspect, {"case_number": "D-3", "matches": [1]}],
                              {"D-1"}, [{"state": "transferred"},
                                        {"state": "awaiting_answer", "referral_after": True},
                                        {"state": "explained"}], 2)
    assert stats == {"imports": 2, "decisions": 10, "matches": 2, "referred": 1,
                     "candidates": 1, "inquiries": 3,
                     "inquiries_by_state": {"transferred": 1, "awaiting_answer": 1,
                                            "explained": 1},
                     "transfers_followed": 2}


# ------------------------------------------------------------------ one import, one transaction

@pytest.fixture
def store(tmp_path, monkeypatch):
    handoffs = HandoffStore(st.SERVICE, st.SOURCE, f"sqlite:///{tmp_path / 'sup.db'}")
    for table in (st.decisions, st.imports, st.referrals):
        table.to_metadata(handoffs.metadata)
    yield handoffs.store
    handoffs.store.dispose()


def _count(store, table):
    with store.session() as s:
        return s.execute(select(func.count()).select_from(table)).scalar_one()


def test_an_import_again_changes_nothing_and_a_changed_row_is_updated(store):
    rows, over, _bad = samples.decisions(rows=200, bad=5, over=7)
    parsed = _rows("d.csv", samples.to_csv(rows))
    first = importer.run(store, PROCURATORATE, "file", "d.csv", "x", parsed, T0)
    assert (first["inserted"], first["rejected"], first["suspects"]) == (195, 5, 7)
    again = importer.run(store, PROCURATORATE, "file", "d.csv", "x", parsed, T0)
    assert (again["inserted"], again["updated"], again["unchanged"]) == (0, 0, 195)
    good_line = next(line for line, _r in parsed if line not in
                     {e["line"] for e in first["errors"]})
    changed = [(line, {**r, "penalty": "罚款3000元"} if line == good_line else r)
               for line, r in parsed]
    third = importer.run(store, PROCURATORATE, "file", "d.csv", "y", changed, T0)
    assert (third["updated"], third["unchanged"]) == (1, 194)
    assert _count(store, st.decisions) == 195 and _count(store, st.imports) == 3


def test_a_failed_import_leaves_nothing_behind(store, monkeypatch):
    rows, _over, _bad = samples.decisions(rows=50, bad=0, over=2)
    parsed = _rows("d.csv", samples.to_csv(rows))
    real = importer.insert

    def failing(table):
        if table is st.imports:
            raise RuntimeError("database went away")
        return real(table)
    monkeypatch.setattr(importer, "insert", failing)
    with pytest.raises(RuntimeError):
        importer.run(store, PROCURATORATE, "file", "d.csv", "x", parsed, T0)
    assert _count(store, st.decisions) == 0 and _count(store, st.imports) == 0


# ------------------------------------------------------------------ the inquiry

SUSPECT = {"case_number": "温鹿交执罚〔2026〕101号", "county": "lucheng",
           "unit": "lucheng-bureau", "plate": "浙C8A101",
           "parties": [{"name": "王某", "id_number": None}],
           "matches": penalties.evaluate(samples.OVER[0])}
QUESTION = {"decision_id": SUSPECT["case_number"],
            "question": "该案实载65人，超员30%且15人，已达危险驾驶罪立案标准，请说明未移送理由。"}


def _open(actor=PROCURATORATE, decision=SUSPECT, open_=(), payload=QUESTION):
    return domain.open_inquiry(actor, payload, decision, list(open_), T0)


def test_the_procuratorate_opens_an_inquiry_addressed_to_the_deciding_agency():
    rec, step = _open()
    assert (rec["state"], rec["owner_unit"], rec["counterpart_unit"]) == \
        ("awaiting_answer", "lucheng-procuratorate", "lucheng-bureau")
    clock = rec["clocks"]["agency_answer"]
    assert clock["period"] == "15d" and clock["actor_role"] == "agency_head"
    assert step["details"]["rules"] == ["passenger_overcapacity"]
    validate_payload("supervision_inquiry.opened.v1", domain.event_payload(rec, step))


def test_only_the_procuratorate_opens_and_only_on_a_suspect_decision_once():
    with pytest.raises(NotAllowed):
        _open(actor=HEAD)
    with pytest.raises(InvalidInput):
        _open(decision={**SUSPECT, "matches": []})
    with pytest.raises(InvalidInput):
        _open(decision=None)
    with pytest.raises(InvalidInput, match="already open"):
        _open(open_=[{"id": "x"}])
    other_county = Actor("pro-x", "procuratorate", "ouhai-procuratorate", "ouhai")
    with pytest.raises(NotAllowed):
        _open(actor=other_county)


def test_the_agency_answers_transfer_within_24_hours_of_deciding():
    rec, _ = _open()
    later = T0 + timedelta(days=3)
    rec, step = domain.act(rec, "reply", HEAD, {"outcome": "transfer"}, later)
    assert rec["state"] == "transfer_pending"
    assert [(c["id"], c["on_time"]) for c in step["satisfied"]] == [("agency_answer", True)]
    assert datetime.fromisoformat(rec["clocks"]["transfer_after_answer"]["due"]) == \
        later + timedelta(hours=24)
    rec, _ = domain.act(rec, "record_transfer", HEAD, {
        "transfer_letter_number": "温鹿交移〔2026〕3号", "transferred_on": "2026-03-05",
        "police_authority": "鹿城公安分局"}, later + timedelta(hours=2))
    assert rec["state"] == "transferred" and rec["transfer"]["police_authority"]


def test_an_explanation_needs_reasons_and_the_procuratorate_may_require_a_transfer():
    rec, _ = _open()
    with pytest.raises(InvalidInput):
        domain.act(rec, "reply", HEAD, {"outcome": "explain"}, T0)
    rec, _ = domain.act(rec, "reply", HEAD, {"outcome": "explain",
                                              "reasons": "乘客中有14名儿童，按规定折算"}, T0)
    assert rec["state"] == "explained" and "assessment" in rec["clocks"]
    with pytest.raises(NotAllowed):
        domain.act(rec, "issue_opinion", HEAD, {}, T0)
    rec, _ = domain.act(rec, "issue_opinion", PROCURATORATE, {
        "opinion_number": "鹿检行意〔2026〕1号", "reasons": "儿童不折算"}, T0)
    assert rec["state"] == "transfer_required"
    assert rec["clocks"]["transfer_after_opinion"]["period"] == "3d"
    with pytest.raises(InvalidTransition):
        domain.act(rec, "reply", HEAD, {"outcome": "transfer"}, T0)


def test_only_the_agency_addressed_answers():
    rec, _ = _open()
    with pytest.raises(NotAllowed):
        domain.act(rec, "reply", OTHER_HEAD, {"outcome": "transfer"}, T0)
    with pytest.raises(NotAllowed):
        domain.act(rec, "reply", UNIT, {"outcome": "transfer"}, T0)


def test_an_inquiry_is_seen_by_the_procuratorate_the_agency_and_coordinators_only():
    rec, _ = _open()
    assert domain.can_view(PROCURATORATE, rec) and domain.can_view(HEAD, rec)
    assert domain.can_view(COORDINATOR, rec)
    for actor in (OTHER_HEAD, POLICE, UNIT):
        assert not domain.can_view(actor, rec), actor.role


def test_decisions_are_read_by_the_procuratorate_of_their_county_and_coordinators():
    assert domain.may_see_decision(PROCURATORATE, SUSPECT)
    assert not domain.may_see_decision(PROCURATORATE, {**SUSPECT, "county": "ouhai"})
    assert domain.may_see_decision(COORDINATOR, SUSPECT)
    for actor in (HEAD, POLICE, UNIT):
        with pytest.raises(NotAllowed):
            domain.require_reader(actor)


def test_every_period_names_its_source_and_local_choices_say_so():
    proc = domain.procedure()
    for deadline_id, rule in proc.deadlines.items():
        assert rule.get("article"), deadline_id
        if rule.get("configurable"):
            assert "local choice" in rule["article"], deadline_id
    assert proc.deadlines["transfer_after_answer"]["article"] == "5 ¶2"
    assert not proc.deadlines["transfer_after_answer"].get("configurable")


def test_the_sample_json_push_shape_equals_the_file_shape():
    pushed = {"case_number": "A-1", "decided_on": "2026-03-02", "county": "lucheng",
              "unit": "lucheng-bureau", "parties": [{"name": "王某"}],
              "facts": samples.OVER[0], "penalty": "罚款", "fine_yuan": 2000}
    decision, errors = penalties.check(json.loads(json.dumps(pushed)))
    assert errors == [] and decision["fine_yuan"] == "2000.00"


def test_sample_file_is_in_the_repository():
    assert Path(SAMPLE).is_file()
