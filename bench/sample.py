"""What the producers send: a referral draft as an enforcement unit files it (the
same shape the e2e tests and the demo use), one per request, spread over the
counties; and a real envelope of such a draft for the scenarios without a database."""
from __future__ import annotations

import functools
from datetime import datetime, timezone

from shared.auth import Actor, issue_token
from shared.schemas.common import COUNTIES

PREFIX = "BENCH-"
_COUNTIES = sorted(COUNTIES)


@functools.cache
def _token(county: str) -> str:
    return issue_token(Actor(f"officer-{county}", "enforcement_unit", f"{county}-team-1",
                             county))


def index_of(case_number: str) -> int:
    return int(case_number.rsplit("-", 1)[1])


def request(i: int) -> tuple[str, dict]:
    """(bearer token, draft payload) of the i-th request."""
    county = _COUNTIES[i % len(_COUNTIES)]
    seats = (19, 35, 45, 53)[i % 4]
    return _token(county), {
        "case_number": f"{PREFIX}{county}-{i:07d}", "county": county,
        "plate": f"浙C{10000 + i % 90000}",
        "summary": f"班线客车严重超员：核载{seats}人，实载{int(seats * 1.3)}人",
        "facts": {"vehicle_category": "passenger_bus", "service_type": "passenger_transport",
                  "rated_seats": seats, "passengers": int(seats * 1.3)},
        "parties": [{"name": "张三", "role": "driver", "id_type": "resident_id",
                     "id_number": "11010519491231002X", "phone": "13812345678"},
                    {"name": "温州某客运有限公司", "role": "operator", "id_type": "uscc",
                     "id_number": "91330300MA2HA1B2C9"}],
        "team": [{"name": "李明", "badge_number": "33030001"},
                 {"name": "王强", "badge_number": "33030002"}],
    }


@functools.cache
def envelope() -> dict:
    """A real ``criminal_referral.drafted.v1`` envelope (about 1.4 KB encoded)."""
    from services.police_handoff import domain
    from services.police_handoff.store import SOURCE
    from shared import envelope as env
    from shared.auth import verify_token
    token, payload = request(0)
    actor = verify_token(token)
    now = datetime.now(timezone.utc)
    rec, step = domain.create("draft", actor, payload, now)
    return env.make_envelope(event_type=step["event"], source=SOURCE, subject=rec["id"],
                             data=domain.event_payload(rec, step), sequence=rec["step"],
                             time=now, actor=actor)
