"""The gateway's own database (issue 15): who may sign in, failed sign-ins, revoked
tokens and the security audit, plus the outbox of ``token.revoked.v1``.

Shared by every gateway replica (PostgreSQL in production: ``DATABASE_URL`` template ->
``liandong_gateway``), so a lock-out or a revocation holds on all of them and survives a
restart. ``liandong users ...`` and ``liandong audit --security`` use the same tables.
"""
from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

from shared import audit
from shared.db import Store
from shared.messaging import messaging_tables

SERVICE = "gateway"

metadata = MetaData()

users = Table(
    "users", metadata,
    Column("username", String(64), primary_key=True),
    Column("role", String(40), nullable=False),
    Column("unit", String(120), nullable=False),
    Column("county", String(60), nullable=True),
    Column("display_name", String(200), nullable=True),
    Column("password", Text, nullable=False),          # Argon2id (or a legacy PBKDF2 hash)
    Column("disabled", Boolean, nullable=False, default=False),
    Column("totp_secret", String(64), nullable=True),   # base32, when enrolled
    Column("totp_last_step", BigInteger, nullable=True),  # a code is accepted once
    Column("development_only", Boolean, nullable=False, default=False),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
)

# one row per (scope, key): scope 'user' (the name tried, known or not) or 'address'
signin_throttle = Table(
    "signin_throttle", metadata,
    Column("scope", String(10), primary_key=True),
    Column("key", String(200), primary_key=True),
    Column("failures", Integer, nullable=False, default=0),
    Column("lockouts", Integer, nullable=False, default=0),
    Column("locked_until", Float, nullable=True),      # epoch seconds
    Column("last_failure", Float, nullable=True),
)

token_revocations = Table(
    "token_revocations", metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
           autoincrement=True),
    Column("jti", String(64), nullable=True, unique=True),
    Column("sub", String(200), nullable=False, index=True),
    Column("not_before", BigInteger, nullable=True),   # tokens of sub with iat < this
    Column("expires", BigInteger, nullable=False, index=True),  # then the entry may go
    Column("reason", String(200), nullable=False),
    Column("by", String(200), nullable=False),
    Column("at", Float, nullable=False),
)

# hash chain like the handoffs' steps; prev_hash UNIQUE: two replicas appending at once
# cannot both chain to the same record (the loser retries), append-only by trigger
security_audit = Table(
    "security_audit", metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
           autoincrement=True),
    Column("at", String(40), nullable=False),
    Column("kind", String(40), nullable=False, index=True),
    Column("username", String(200), nullable=True),
    Column("address", String(64), nullable=True),
    Column("detail", JSON, nullable=False),
    Column("prev_hash", String(64), nullable=False, unique=True),
    Column("hash", String(64), nullable=False),
)
audit.append_only(security_audit)

messaging_tables(metadata)

store = Store(SERVICE, metadata)
