"""Identities and payloads shared by the tests."""
from __future__ import annotations

from shared.auth import Actor, issue_token

UNIT = Actor("officer-li", "enforcement_unit", "lucheng-team-1", "lucheng")
OTHER_UNIT = Actor("officer-wu", "enforcement_unit", "ouhai-team-1", "ouhai")
HEAD = Actor("head-chen", "agency_head", "lucheng-bureau", "lucheng")
OTHER_HEAD = Actor("head-zhou", "agency_head", "ruian-bureau", "ruian")
POLICE = Actor("police-wang", "police", "lucheng-psb", "lucheng")
POLICE_2 = Actor("police-zhao", "police", "ouhai-psb", "ouhai")
PROCURATORATE = Actor("pro-sun", "procuratorate", "lucheng-procuratorate", "lucheng")
COORDINATOR = Actor("coord-lin", "coordinator", "wenzhou-coordination", None)
MARKET = Actor("mr-he", "market_regulation", "wenzhou-amr", None)

VALID_ID = "11010519491231002X"       # checksum-valid resident ID (GB 11643 example)
INVALID_ID = "110105194912310021"     # wrong check digit


def token(actor: Actor) -> str:
    return issue_token(actor)


def draft_payload(case_number: str = "WZ-LC-2026-0001", **over) -> dict:
    payload = {
        "case_number": case_number, "county": "lucheng", "plate": "浙C12345",
        "summary": "班线客车严重超员：核载50人，实载63人",
        "facts": {"vehicle_category": "passenger_bus", "service_type": "passenger_transport",
                  "rated_seats": 50, "passengers": 63},
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

TRANSFER = {"police_unit": POLICE.unit, "procuratorate_unit": PROCURATORATE.unit,
            "documents": DOCUMENTS}
