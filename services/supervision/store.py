"""The supervision service's database: the shared handoff tables (its inquiries) with
the outbox/inbox, plus the imported penalty decisions, the imports and the index of
criminal referrals it keeps from police_handoff's events."""
from __future__ import annotations

from sqlalchemy import JSON, Boolean, Column, DateTime, Index, Integer, String, Table

from shared.handoffs import HandoffStore

SERVICE = "supervision"
SOURCE = "/wenzhou/procuratorate/supervision"

handoffs = HandoffStore(SERVICE, SOURCE)
metadata = handoffs.metadata
store = handoffs.store

decisions = Table(
    "penalty_decisions", metadata,
    Column("case_number", String(60), primary_key=True),
    Column("county", String(20), nullable=False),
    Column("unit", String(100), nullable=False),
    Column("decided_on", String(10), nullable=False),
    Column("plate_key", String(20)),
    Column("party_keys", JSON, nullable=False),
    Column("doc", JSON, nullable=False),
    Column("matches", JSON, nullable=False),
    Column("suspect", Boolean, nullable=False),
    Column("fingerprint", String(64), nullable=False),
    Column("import_id", String(36), nullable=False),
    Column("imported_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)
Index("ix_penalty_decisions_suspect_county", decisions.c.suspect, decisions.c.county)

imports = Table(
    "penalty_imports", metadata,
    Column("id", String(36), primary_key=True),
    Column("filename", String(300)),
    Column("source", String(20), nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("actor", JSON, nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("rows", Integer, nullable=False),
    Column("inserted", Integer, nullable=False),
    Column("updated", Integer, nullable=False),
    Column("unchanged", Integer, nullable=False),
    Column("rejected", Integer, nullable=False),
    Column("suspects", Integer, nullable=False),
    Column("errors", JSON, nullable=False),
)
Index("ix_penalty_imports_at", imports.c.at)

referrals = Table(
    "referral_index", metadata,   # criminal referrals, from criminal_referral.* events
    Column("referral_id", String(36), primary_key=True),
    Column("case_number", String(60), nullable=False),
    Column("plate_key", String(20)),
    Column("party_keys", JSON, nullable=False),
    Column("county", String(20)),
    Column("owner_unit", String(100)),
    Column("state", String(40), nullable=False),
    Column("drafted_at", DateTime(timezone=True), nullable=False),
)
Index("ix_referral_index_case_number", referrals.c.case_number)
Index("ix_referral_index_plate_key", referrals.c.plate_key)
