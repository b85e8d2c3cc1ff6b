"""Outcome feedback of criminal referrals (issue 22, part 3), kept apart from the
tracker's general statistics: for each referral, when it reached each milestone of the
criminal process (referred, filed, sent for prosecution, prosecuted, convicted, or
dropped, not prosecuted, exempted, acquitted, returned for a penalty) with its county
and offence — the funnel filing -> prosecution -> conviction by county or offence.

Written from the same events as the rest of the read model, in the same transaction
(one read and at most two writes per batch), and rebuilt with it.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, DateTime, String, Table, bindparam, func, select, update

from shared.db import insert_rows

KIND = "criminal_referral"
# the state an event enters -> the milestone it marks (first time only)
MILESTONES = {
    "transferred": "referred_at",
    "filed": "filed_at",
    "prosecution_review": "sent_for_prosecution_at",
    "investigation_dropped": "dropped_at",
    "prosecuted": "prosecuted_at",
    "not_prosecuted": "not_prosecuted_at",
    "convicted": "convicted_at",
    "exempted_from_punishment": "exempted_at",
    "acquitted": "acquitted_at",
    "returned_for_penalty": "returned_at",
}
COLUMNS = tuple(dict.fromkeys(MILESTONES.values()))
GROUPS = ("county", "offence")


def define(metadata) -> Table:
    return Table(
        "criminal_outcomes", metadata,
        Column("handoff_id", String(64), primary_key=True),
        Column("county", String(20)),
        Column("offence", String(100)),
        *(Column(c, DateTime(timezone=True)) for c in COLUMNS),
    )


def _offence(details: dict) -> str | None:
    """The offence an event names: the charge filed, sent, prosecuted or judged, else
    the first the judgment standards suggested at drafting."""
    if details.get("offence"):
        return details["offence"]
    suggested = details.get("suspected_offences") or []
    return suggested[0] if suggested else None


def collect(steps: list[dict]) -> dict[str, dict]:
    """handoff id -> what this batch's criminal-referral events say (in event order)."""
    found: dict[str, dict] = {}
    for s in steps:
        data = s["data"]
        if data.get("kind") != KIND:
            continue
        row = found.setdefault(s["handoff_id"], {})
        row["county"] = data.get("county")
        offence = _offence(data.get("details") or {})
        if offence:
            row["offence"] = offence
        column = MILESTONES.get(s["state"])
        if column and s["state"] != data.get("previous_state"):
            row.setdefault(column, s["at"])
    return found


def write(session, table: Table, steps: list[dict]) -> None:
    """Record this batch's milestones: a milestone keeps the first time it was reached."""
    found = collect(steps)
    if not found:
        return
    existing = {r.handoff_id: r._mapping for r in session.execute(
        select(table).where(table.c.handoff_id.in_(list(found))))}
    inserts, updates = [], []
    for handoff_id, row in found.items():
        old = existing.get(handoff_id)
        if old is None:
            inserts.append({"handoff_id": handoff_id, "offence": None,
                            **dict.fromkeys(COLUMNS), **row})
            continue
        merged = {c: old[c] or row.get(c) for c in COLUMNS}
        updates.append({**merged, "county": row.get("county") or old["county"],
                        "offence": row.get("offence") or old["offence"],
                        "_id": handoff_id})
    insert_rows(session, table, inserts)
    if updates:
        session.execute(update(table).where(table.c.handoff_id == bindparam("_id")), updates)


def _rate(numerator: int, denominator: int) -> float | None:
    return round(numerator / denominator, 4) if denominator else None


def funnel(session, table: Table, handoffs: Table, visible, group_by: str,
           start: datetime | None = None, end: datetime | None = None) -> list[dict]:
    """Counts of each milestone and the rates filing -> prosecution -> conviction, by
    county or offence, over the referrals ``visible`` (a condition on ``handoffs``, None:
    all) referred in [start, end)."""
    key = table.c[group_by]
    query = (select(key.label("key"), *(func.count(table.c[c]).label(c) for c in COLUMNS))
             .select_from(table.join(handoffs, handoffs.c.handoff_id == table.c.handoff_id))
             .where(table.c.referred_at.is_not(None)).group_by(key).order_by(key))
    if visible is not None:
        query = query.where(visible)
    if start:
        query = query.where(table.c.referred_at >= start)
    if end:
        query = query.where(table.c.referred_at < end)
    out = []
    for r in session.execute(query).mappings():
        counts = {c.removesuffix("_at"): r[c] for c in COLUMNS}
        out.append({group_by: r["key"] or "-", **counts,
                    "filing_rate": _rate(counts["filed"], counts["referred"]),
                    "prosecution_rate": _rate(counts["prosecuted"], counts["filed"]),
                    "conviction_rate": _rate(counts["convicted"], counts["prosecuted"])})
    return out
