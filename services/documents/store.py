"""The documents service's own database: what it knows of each stored blob (size,
media type, when stored, the last check of its bytes) and the download audit (who
fetched which document of which handoff, when, which range)."""
from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Integer,
    MetaData,
    String,
    Table,
)

from shared import audit
from shared.db import Store

SERVICE = "documents"

metadata = MetaData()
blobs = Table(
    "blobs", metadata,
    Column("sha256", String(64), primary_key=True),
    Column("size", BigInteger, nullable=False),
    Column("media_type", String(120), nullable=False),
    Column("stored_at", DateTime(timezone=True), nullable=False),
    Column("checked_at", DateTime(timezone=True)),
    Column("status", String(20), nullable=False, default="ok"),   # ok, missing, altered
)
downloads = Table(
    "downloads", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("handoff_kind", String(40), nullable=False),
    Column("handoff_id", String(36), nullable=False, index=True),
    Column("document_id", String(36), nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("user_id", String(100), nullable=False),
    Column("role", String(40), nullable=False),
    Column("unit", String(100)),
    Column("byte_range", String(60)),
)
audit.append_only(downloads)

store = Store(SERVICE, metadata)
