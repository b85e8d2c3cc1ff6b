"""The case file's rules from the standards: which kinds, who uploads them, when they are
frozen; the step an upload records; the official forms rendered to PDF."""
from __future__ import annotations

import io
from datetime import UTC, datetime

import pytest

from shared import casefile
from shared.errors import InvalidInput, InvalidTransition, NotAllowed
from shared.events import validate_payload
from tests.helpers import POLICE, UNIT

SHA = "a" * 64


def record(state="draft", kind="criminal_referral"):
    return {"id": "h1", "kind": kind, "state": state, "step": 3, "case_number": "WZ-1",
            "county": "lucheng", "owner_unit": UNIT.unit, "counterpart_unit": None}


def doc(kind="transfer_letter"):
    return {"document_id": "d1", "kind": kind, "filename": "移送书.pdf",
            "media_type": "application/pdf", "size": 10, "sha256": SHA}


def test_every_procedure_has_its_case_file():
    assert {"transfer_letter", "investigation_report", "items_list", "receipt"} <= set(
        casefile.kinds("criminal_referral"))
    assert "price_list" in casefile.kinds("market_referral")   # the evidence kinds
    assert casefile.kinds("joint_action") and casefile.kinds("assistance_request")
    assert casefile.required_for_transfer("criminal_referral") == [
        "transfer_letter", "investigation_report", "items_list"]
    for f in casefile.forms("criminal_referral").values():
        assert f["kind"] in casefile.kinds("criminal_referral") and f["article"]


def test_upload_rules_kind_role_and_frozen_states():
    casefile.check_upload("criminal_referral", record(), UNIT, "transfer_letter")
    with pytest.raises(InvalidInput):
        casefile.check_upload("criminal_referral", record(), UNIT, "price_list")
    with pytest.raises(NotAllowed):
        casefile.check_upload("criminal_referral", record(), POLICE, "transfer_letter")
    with pytest.raises(InvalidTransition):          # the sender's papers after the transfer
        casefile.check_upload("criminal_referral", record("transferred"), UNIT, "items_list")
    casefile.check_upload("criminal_referral", record("transferred"), POLICE, "receipt")
    with pytest.raises(InvalidTransition):          # final: everything frozen
        casefile.check_upload("criminal_referral", record("convicted"), POLICE, "receipt")


def test_attach_records_a_step_whose_event_carries_the_record():
    now = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)
    new, step = casefile.attach("criminal_referral", record(), UNIT, doc(), now)
    assert new["step"] == 4 and new["files"][0]["sha256"] == SHA
    assert new["files"][0]["uploaded_by"]["unit"] == UNIT.unit
    assert (step["from"], step["to"], step["event"]) == (
        "draft", "draft", "criminal_referral.file_attached.v1")
    from shared.schemas.handoff import event_data
    validate_payload(step["event"], event_data("criminal_referral", new, step))


def test_forms_render_to_pdf_with_the_case_data():
    pytest.importorskip("weasyprint")
    pypdf = pytest.importorskip("pypdf")
    from services.documents import forms
    from tests.unit.test_police_domain import Case
    case = Case()
    case.to_receipted()
    try:
        pdf = forms.render("criminal_referral", "not_filing_notice", case.rec,
                           datetime.now(UTC))
    except Exception as exc:   # noqa: BLE001 - Pango missing: the forms answer 503
        pytest.skip(f"WeasyPrint cannot render here: {exc}")
    text = "".join("".join(p.extract_text().split())
                   for p in pypdf.PdfReader(io.BytesIO(pdf)).pages)
    assert case.rec["case_number"] in text and "张三" in text and "第九条" in text


def test_a_generated_form_is_filed_once():
    """Filing the same form twice (a double click, a retry) is a 409 naming the document
    already filed, not a duplicate; an upload of the same kind stays possible."""
    now = datetime(2026, 3, 2, tzinfo=UTC)
    rec, _ = casefile.attach("criminal_referral", record(), UNIT,
                             {**doc(), "form": "transfer_letter"}, now)
    with pytest.raises(InvalidTransition) as err:
        casefile.attach("criminal_referral", rec, UNIT,
                        {**doc(), "document_id": "d2", "form": "transfer_letter"}, now)
    assert err.value.code == "already_filed" and "d1" in err.value.errors["form"][0]
    again, _ = casefile.attach("criminal_referral", rec, UNIT, {**doc(), "document_id": "d3"},
                               now)
    assert [f["id"] for f in again["files"]] == ["d1", "d3"]


def test_the_service_refuses_a_transfer_without_the_files_and_moves_them_on_a_forward(
        tmp_path):
    """Through the shared RPC adapter on SQLite: the transfer names the missing kinds;
    after a forward the former police unit gets no files (list, record, read)."""
    from tests.helpers import (
        HEAD,
        POLICE_2,
        REQUIRED_FILES,
        TRANSFER,
        draft_payload,
        file_record,
        token,
    )
    from tests.unit.test_calendar_recompute import _PoliceHandoffs
    svc = _PoliceHandoffs(f"sqlite:///{tmp_path / 'police.db'}")
    rec = svc.create(token(UNIT), "draft", draft_payload("WZ-LC-CF1"))
    svc.attach_file(token(UNIT), rec["id"], file_record("transfer_letter"))
    svc.act(token(UNIT), rec["id"], "request_approval", {"transfer_report": "报告"})
    svc.act(token(HEAD), rec["id"], "approve", {})
    with pytest.raises(InvalidInput) as err:
        svc.act(token(UNIT), rec["id"], "transfer", TRANSFER)
    assert [m.split()[1] for m in err.value.errors["files"]] == list(REQUIRED_FILES[1:])
    for kind in REQUIRED_FILES[1:]:
        svc.attach_file(token(UNIT), rec["id"], file_record(kind))
    svc.act(token(UNIT), rec["id"], "transfer", TRANSFER)
    svc.act(token(POLICE), rec["id"], "sign_receipt",
            {"receipt_number": "R-1", "receiving_officer": "王"})
    first = svc.documents(token(POLICE), rec["id"])["files"][0]
    svc.act(token(POLICE), rec["id"], "forward", {"competent_authority": POLICE_2.unit,
                                                  "reason": "不属本局管辖"})
    assert len(svc.get(token(POLICE_2), rec["id"])["files"]) == 3
    assert svc.document(token(POLICE_2), rec["id"], first["id"])["sha256"] == first["sha256"]
    assert svc.get(token(POLICE), rec["id"])["files"] == []
    assert [r["files"] for r in svc.list(token(POLICE)) if r["id"] == rec["id"]] == [[]]
    for call in (lambda: svc.documents(token(POLICE), rec["id"]),
                 lambda: svc.document(token(POLICE), rec["id"], first["id"]),
                 lambda: svc.form_record(token(POLICE), rec["id"])):
        with pytest.raises(NotAllowed):
            call()
