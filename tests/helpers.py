"""Identities and payloads shared by the tests."""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from datetime import datetime, timezone

from shared import casefile
from shared.auth import Actor, issue_token
from shared.demo import tiny_pdf

UNIT = Actor("officer-li", "enforcement_unit", "lucheng-team-1", "lucheng")
OTHER_UNIT = Actor("officer-wu", "enforcement_unit", "ouhai-team-1", "ouhai")
HEAD = Actor("head-chen", "agency_head", "lucheng-bureau", "lucheng")
OTHER_HEAD = Actor("head-zhou", "agency_head", "ruian-bureau", "ruian")
POLICE = Actor("police-wang", "police", "lucheng-psb", "lucheng")
POLICE_2 = Actor("police-zhao", "police", "ouhai-psb", "ouhai")
PROCURATORATE = Actor("pro-sun", "procuratorate", "lucheng-procuratorate", "lucheng")
COURT = Actor("judge-qian", "court", "lucheng-court", "lucheng")
COORDINATOR = Actor("coord-lin", "coordinator", "wenzhou-coordination", None)
MARKET = Actor("mr-he", "market_regulation", "wenzhou-amr", None)

VALID_ID = "11010519491231002X"       # checksum-valid resident ID (GB 11643 example)
INVALID_ID = "110105194912310021"     # wrong check digit


def token(actor: Actor) -> str:
    return issue_token(actor)


# --- tokens as they were before issue 20 (HMAC over a shared secret) -------------------

# the fixed strings anyone could read: shared/auth.py's fallback, docker-compose.yml's default
OLD_DEFAULT_SECRETS = ["liandong-dev-secret-change-me",
                       "dev-only-insecure-liandong-secret-change-me"]


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def old_hmac_token(secret: str, actor: Actor = COORDINATOR) -> str:
    """A token exactly as shared/auth.py made them before issue 20."""
    payload = b64(json.dumps({"user_id": actor.user_id, "role": actor.role,
                              "unit": actor.unit, "county": actor.county,
                              "exp": 4102444800}, separators=(",", ":")).encode())
    sig = b64(hmac.new(secret.encode(), payload.encode(), hashlib.sha256).digest())
    return f"{payload}.{sig}"


def draft_payload(case_number: str = "WZ-LC-2026-0001", **over) -> dict:
    payload = {
        "case_number": case_number, "county": "lucheng", "plate": "浙C12345",
        "summary": "班线客车严重超员：核载50人，实载65人",
        "facts": {"vehicle_category": "passenger_bus", "service_type": "passenger_transport",
                  "rated_seats": 50, "passengers": 65},
        "parties": [{"name": "张三", "role": "driver", "id_type": "resident_id",
                     "id_number": VALID_ID, "phone": "13812345678"},
                    {"name": "温州某客运有限公司", "role": "operator", "id_type": "uscc",
                     "id_number": "91330300MA2HA1B2C9"}],
        "team": [{"name": "李明", "badge_number": "33030001"},
                 {"name": "王强", "badge_number": "33030002"}],
    }
    payload.update(over)
    return payload


DOCUMENTS = [
    {"kind": "transfer_letter", "title": "涉嫌犯罪案件移送书", "reference": "温交执移〔2026〕1号"},
    {"kind": "investigation_report", "title": "涉嫌犯罪案件情况的调查报告"},
    {"kind": "items_list", "title": "涉案物品清单"},
    {"kind": "inspection_reports", "title": "车辆核载检验报告"},
    {"kind": "other_materials", "title": "现场笔录、视频"},
]

# the case file's files a transfer needs (Decree art. 6 (1)-(3); required_for_transfer)
REQUIRED_FILES = ("transfer_letter", "investigation_report", "items_list")


def file_record(kind: str, case_number: str = "WZ-LC-2026-0001") -> dict:
    """An ``attach_file`` document record of a small real PDF (its blob not stored:
    for the domain and the RPC adapter without a gateway)."""
    data = tiny_pdf(case_number, kind)
    return {"document_id": uuid.uuid4().hex, "kind": kind, "title": kind,
            "filename": f"{kind}.pdf", "media_type": "application/pdf", "size": len(data),
            "sha256": hashlib.sha256(data).hexdigest()}


def with_required_files(rec: dict, now=None) -> dict:
    """A referral record with the required files in its case file (domain tests)."""
    for kind in REQUIRED_FILES:
        rec, _step = casefile.attach(rec["kind"], rec, UNIT, file_record(kind),
                                     now or datetime.now(timezone.utc))
    return rec


def attach_required_files(service, handoff_id: str, actor: Actor = UNIT) -> None:
    """Record the required files over RPC (``service``: a police_handoff proxy), for the
    tests that drive a referral without the gateway; test_documents_e2e uploads real
    files through it."""
    for kind in REQUIRED_FILES:
        service.attach_file(token(actor), handoff_id, file_record(kind))


def upload_required_files(base_url: str, handoff_id: str, actor: Actor = UNIT) -> list:
    """Upload the required files through the gateway, as the console does (e2e)."""
    import requests
    out = []
    for kind in REQUIRED_FILES:
        r = requests.post(f"{base_url}/api/v1/criminal-referrals/{handoff_id}/documents",
                          headers={"Authorization": f"Bearer {token(actor)}"}, timeout=60,
                          data={"kind": kind, "title": kind},
                          files={"file": (f"{kind}.pdf", tiny_pdf(handoff_id, kind),
                                          "application/pdf")})
        assert r.status_code == 201, r.text
        out.append(r.json())
    return out


TRANSFER = {"police_unit": POLICE.unit, "procuratorate_unit": PROCURATORATE.unit,
            "procuratorate_copy": {"sent_on": "2026-03-02", "reference": "温交执移〔2026〕1号"},
            "documents": DOCUMENTS}


# --- market-regulation referrals (市场监管移送) -----------------------------------------

OTHER_MARKET = Actor("mr-xu", "market_regulation", "ruian-amr", "ruian")
COUNTY_COMMAND = Actor("cc-chen", "county_command", "lucheng-command", "lucheng")
OTHER_COUNTY_COMMAND = Actor("cc-pan", "county_command", "ouhai-command", "ouhai")
CITY_COMMAND = Actor("city-zhang", "city_command", "wenzhou-command", None)

VALID_USCC = "91330300MA2HA1B2C9"     # checksum-valid unified social credit code
INVALID_USCC = "91330300MA2HA1B2C0"   # wrong check character


def evidence(*kinds: str) -> list[dict]:
    """Evidence documents of the given kinds (contracts/standards/market_referral.yaml)."""
    return [{"kind": k, "title": f"{k} 材料", "reference": f"温交执〔2026〕{i}号"}
            for i, k in enumerate(kinds, start=1)]


# required evidence of driving_training_price_fraud
PRICE_FRAUD_EVIDENCE = evidence("referral_letter", "case_description", "price_list",
                                "fee_receipts")


def market_payload(case_number: str = "WZ-LC-2026-0101", **over) -> dict:
    """A transport -> market regulation referral of a driving-training intermediary."""
    payload = {
        "referral_kind": "driving_training_price_fraud", "case_number": case_number,
        "county": "lucheng", "target_unit": MARKET.unit,
        "summary": "驾培中介以“包过”“低价学车”招揽学员，报名后以各种名目加价收费",
        "parties": [{"name": "温州某驾培咨询服务有限公司", "role": "intermediary",
                     "id_type": "uscc", "id_number": VALID_USCC},
                    {"name": "张三", "role": "intermediary", "id_type": "resident_id",
                     "id_number": VALID_ID, "phone": "13812345678"}],
        "documents": PRICE_FRAUD_EVIDENCE,
    }
    payload.update(over)
    return payload


def market_to_transport_payload(case_number: str = "WZ-AMR-2026-0007", **over) -> dict:
    """A market regulation -> transport referral of a repair shop that never filed."""
    payload = {
        "referral_kind": "vehicle_repair_unfiled", "case_number": case_number,
        "county": "lucheng", "target_unit": UNIT.unit,
        "summary": "某汽车维修店已办理营业执照，未向交通运输主管部门备案即从事维修经营",
        "parties": [{"name": "温州某汽车维修店", "role": "operator", "id_type": "uscc",
                     "id_number": VALID_USCC}],
        "documents": evidence("referral_letter", "case_description", "inspection_record",
                              "filing_query"),
    }
    payload.update(over)
    return payload


# --- command centres (services/command) -------------------------------------------------

CITY = Actor("cmd-chen", "city_command", "wenzhou-command", None)
LUCHENG = Actor("cmd-lc", "county_command", "lucheng-command", "lucheng")
OUHAI = Actor("cmd-oh", "county_command", "ouhai-command", "ouhai")
RUIAN = Actor("cmd-ra", "county_command", "ruian-command", "ruian")
TAISHUN = Actor("cmd-ts", "county_command", "taishun-command", "taishun")
LUCHENG_PSB = Actor("psb-lc", "police", "lucheng-psb", "lucheng")
CITY_AMR = Actor("amr-wz", "market_regulation", "wenzhou-amr", None)


def dispatch_payload(now, recipients=("lucheng-command", "ouhai-command", "wenzhou-amr"),
                     **over) -> dict:
    """A city-wide joint action on illegal ride-hailing, window [now+1h, now+5h]."""
    from datetime import timedelta
    payload = {
        "title": "温州南站周边非法营运整治", "domain": "illegal_operation",
        "area": ["lucheng", "ouhai"], "location": "温州南站、机场周边",
        "window_start": (now + timedelta(hours=1)).isoformat(),
        "window_end": (now + timedelta(hours=5)).isoformat(),
        "priority": "normal", "instructions": "联合查处非法营运车辆，发现涉嫌犯罪线索及时移送",
        "recipients": list(recipients),
    }
    payload.update(over)
    return payload


RESULT = {"vehicles_checked": 40, "cases_opened": 3, "referrals_made": 0,
          "summary": "查处非法营运车辆3辆"}
