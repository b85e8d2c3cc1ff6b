"""Synthetic penalty-decision files in the import layout (contracts/supervision): the
tests' and ``make bench``'s 5,000-row XLSX with bad rows and decisions over a criminal
threshold spread through it. Not used by the service itself."""
from __future__ import annotations

import csv
import io
import json
import random

from services.supervision.penalties import FIELDS

OVER = [  # facts over a criminal threshold (judgment.yaml)
    {"vehicle_category": "passenger_bus", "service_type": "passenger_transport",
     "rated_seats": 50, "passengers": 65},
    {"vehicle_category": "passenger_bus", "service_type": "passenger_transport",
     "road_type": "highway", "speed_limit_kmh": 60, "speed_kmh": 121},
]
UNDER = [  # administrative tier only
    {"vehicle_category": "passenger_bus", "service_type": "passenger_transport",
     "rated_seats": 50, "passengers": 63},
    {"vehicle_category": "passenger_bus", "service_type": "passenger_transport",
     "road_type": "highway", "speed_limit_kmh": 100, "speed_kmh": 156},
    {},
]
# (field, bad value, what the report says is wrong): one per bad row, in turn
BAD = [
    ("decided_on", "2026-02-30"), ("county", "atlantis"), ("case_number", ""),
    ("facts", "{passengers: 65"), ("facts", '{"passenger_count": 65}'),
    ("fine_yuan", "-5"), ("facts", '{"passengers": "many"}'), ("penalty", ""),
    ("parties", ""), ("unit", ""),
]
COUNTIES = ["lucheng", "ouhai", "longwan", "ruian"]


def decisions(rows: int = 5000, bad: int = 20, over: int = 30, seed: int = 22,
              prefix: str = "温交执罚〔2026〕", counties: list[str] = COUNTIES,
              ) -> tuple[list[dict], list[str], list[int]]:
    """(rows as file cells, case numbers over a threshold, lines of the bad rows)."""
    rng = random.Random(seed)
    picks = rng.sample(range(rows), bad + over)
    bad_at, over_at = set(picks[:bad]), set(picks[bad:])
    out, over_numbers, bad_lines = [], [], []
    for i in range(rows):
        county = counties[i % len(counties)]
        facts = OVER[i % 2] if i in over_at else UNDER[i % 3]
        row = {"case_number": f"{prefix}{i + 1:05d}号", "decided_on": f"2026-03-{1 + i % 28:02d}",
               "county": county, "unit": f"{county}-bureau",
               "parties": f"当事人{i}",
               "plate": f"浙C{10000 + i}", "offence_code": "60211",
               "facts": json.dumps(facts, ensure_ascii=False) if facts else "",
               "summary": "", "penalty": "罚款2000元", "fine_yuan": "2000"}
        if i in bad_at:
            field, value = BAD[len(bad_lines) % len(BAD)]
            row[field] = value
            bad_lines.append(i + 2)
        elif i in over_at:
            over_numbers.append(row["case_number"])
        out.append(row)
    return out, over_numbers, bad_lines


def to_csv(rows: list[dict]) -> bytes:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, FIELDS)
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue().encode("utf-8")


def to_xlsx(rows: list[dict]) -> bytes:
    from openpyxl import Workbook
    wb = Workbook(write_only=True)
    ws = wb.create_sheet("处罚决定")
    ws.append(FIELDS)
    for row in rows:
        ws.append([row.get(f) if row.get(f) != "" else None for f in FIELDS])
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()
