"""A demo scenario seeded through the running services (as real users would act):
criminal referrals spread over the counties and over every stage of the procedure."""
from __future__ import annotations

import random
import uuid
from datetime import datetime, timezone

from shared.auth import Actor, issue_token
from shared.schemas.common import COUNTIES

VALID_IDS = ["11010519491231002X", "33030219850612031X", "330381199203151223"]
DOCUMENTS = [{"kind": k, "title": t} for k, t in (
    ("transfer_letter", "涉嫌犯罪案件移送书"), ("investigation_report", "调查报告"),
    ("items_list", "涉案物品清单"), ("inspection_reports", "检验报告"),
    ("other_materials", "现场笔录"))]
# how far each referral goes: a prefix of this path (to a judgment, issue 22)
PATH = ["request_approval", "approve", "transfer", "sign_receipt", "file",
        "hand_over_evidence", "end_investigation", "decide_prosecution", "record_judgment"]


def _actors(county: str) -> dict[str, Actor]:
    return {
        "enforcement_unit": Actor(f"officer-{county}", "enforcement_unit", f"{county}-team-1",
                                  county),
        "agency_head": Actor(f"head-{county}", "agency_head", f"{county}-bureau", county),
        "police": Actor(f"police-{county}", "police", f"{county}-psb", county),
        "procuratorate": Actor(f"pro-{county}", "procuratorate", f"{county}-procuratorate",
                               county),
        "court": Actor(f"court-{county}", "court", f"{county}-court", county),
    }


def _payload(command: str, county: str) -> tuple[str, dict]:
    return {
        "request_approval": ("enforcement_unit", {"transfer_report": "专案组核实：客车严重超员"}),
        "approve": ("agency_head", {"opinion": "同意移送"}),
        "transfer": ("enforcement_unit", {"police_unit": f"{county}-psb",
                                          "procuratorate_unit": f"{county}-procuratorate",
                                          "procuratorate_copy": {"sent_on": _today()},
                                          "documents": DOCUMENTS}),
        "sign_receipt": ("police", {"receipt_number": "R-" + uuid.uuid4().hex[:6],
                                    "receiving_officer": "值班民警"}),
        "file": ("police", {"filing_number": "F-" + uuid.uuid4().hex[:6]}),
        "hand_over_evidence": ("enforcement_unit", {"items": ["客车一辆"],
                                                    "handover_record_number": "H-1"}),
        "end_investigation": ("police", {"outcome": "prosecution", "offence": "危险驾驶罪",
                                         "decision_number": "Q-" + uuid.uuid4().hex[:6]}),
        "decide_prosecution": ("procuratorate", {
            "outcome": "prosecute", "decision_number": "G-" + uuid.uuid4().hex[:6],
            "court_unit": f"{county}-court", "offence": "危险驾驶罪"}),
        "record_judgment": ("court", {
            "outcome": "convicted", "judgment_number": "J-" + uuid.uuid4().hex[:6],
            "judgment_date": _today(), "effective_on": _today(), "offence": "危险驾驶罪",
            "sentence": "拘役一个月，并处罚金"}),
    }[command]


def _today() -> str:
    return datetime.now(timezone.utc).date().isoformat()


def seed(rpc, count: int = 20, progress=lambda n: None, rng=None, token=issue_token) -> dict:
    """``token(actor)`` signs each acting user's token (the CLI's is audited)."""
    rng = rng or random.Random(2026)
    svc = rpc.police_handoff
    states: dict[str, int] = {}
    for i in range(count):
        county = rng.choice(list(COUNTIES))
        actors = _actors(county)
        seats = rng.choice([19, 35, 45, 53])
        # over the police filing standard for serious over-capacity (medium bus: 10 people
        # over, large: 15; see contracts/standards/judgment.yaml)
        passengers = seats + (15 if seats >= 20 else 10)
        rec = svc.create(token(actors["enforcement_unit"]), "draft", {
            "case_number": f"WZ-{county[:2].upper()}-2026-{i + 1:04d}", "county": county,
            "summary": f"客车严重超员：核载{seats}人，实载{passengers}人",
            "plate": f"浙C{rng.randint(10000, 99999)}",
            "facts": {"vehicle_category": "passenger_bus", "service_type": "passenger_transport",
                      "rated_seats": seats, "passengers": passengers},
            "parties": [{"name": "驾驶员" + str(i), "role": "driver", "id_type": "resident_id",
                         "id_number": VALID_IDS[i % len(VALID_IDS)]}],
            "team": [{"name": "执法员甲", "badge_number": "1"},
                     {"name": "执法员乙", "badge_number": "2"}],
        })
        for command in PATH[:rng.randint(0, len(PATH))]:
            role, payload = _payload(command, county)
            rec = svc.act(token(actors[role]), rec["id"], command, payload)
        states[rec["state"]] = states.get(rec["state"], 0) + 1
        progress(1)
    return {"referrals": count, "by_state": states}
