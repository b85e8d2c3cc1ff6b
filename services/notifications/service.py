"""nameko adapter of the notifications service: consumes the bus (inbox-deduplicated),
queues one delivery per event, unit and channel in the same transaction (outbox), and a
timer delivers what is due -- at least once, with back-off, each under its idempotency
key so a receiver sees one message even when a crash made the service send it again."""
from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

import structlog
from nameko.timer import timer
from sqlalchemy import func, insert, select, update

from services.notifications import channels, domain
from services.notifications import store as st
from shared import faults
from shared.auth import require_role, verify_token
from shared.logging import configure_logging
from shared.messaging import claim_many
from shared.nameko_ext import Database, on_event, rpc
from shared.revocations import Revocations
from shared.tokenkeys import check_startup

configure_logging("notifications")
check_startup("notifications")
domain.config()      # a bad deploy/notifications.yaml stops the service at start
log = structlog.get_logger(__name__)

CONSUMER = "notifications.events"
DELIVER_SECONDS = float(os.environ.get("NOTIFICATIONS_DELIVER_SECONDS", "1"))
# a delivery being sent is not taken by another replica (or this one restarted after a
# crash) for this long: longer than any channel's send with its time-outs
LEASE = timedelta(seconds=float(os.environ.get("NOTIFICATIONS_LEASE_SECONDS", "60")))


def _now() -> datetime:
    return datetime.now(UTC)


class NotificationsService:
    name = "notifications"
    db = Database(st.store)
    revocations = Revocations()      # refuses revoked tokens, fails closed

    @on_event(CONSUMER)
    def on_event(self, envelope):
        """Queue the deliveries this event calls for (once: inbox and delivery keys)."""
        notes = domain.notices(envelope)
        with self.db.transaction() as s:
            if not claim_many(s, st.metadata, CONSUMER, [envelope]):
                return 0
            now, queued = _now(), 0
            for note in notes:
                for name, channel in domain.channels_of(note["unit"]):
                    key = domain.delivery_key(envelope["id"], note["unit"], name)
                    if s.execute(select(st.deliveries.c.key).where(
                            st.deliveries.c.key == key)).first():
                        continue
                    s.execute(insert(st.deliveries).values(
                        key=key, event_id=envelope["id"], unit=note["unit"],
                        topic=note["topic"], channel=name, channel_type=channel["type"],
                        title=note["title"], text=note["text"], status="pending",
                        attempts=0, next_at=now, created_at=now))
                    queued += 1
        return queued

    @timer(interval=DELIVER_SECONDS)
    def deliver(self):
        return self.deliver_due()

    def deliver_due(self, limit: int = 50) -> int:
        now = _now()
        d = st.deliveries
        with self.db.transaction() as s:     # take a lease on what is due
            query = select(d).where(d.c.status == "pending", d.c.next_at <= now).order_by(
                d.c.next_at).limit(limit)
            if self.db.is_postgres:
                query = query.with_for_update(skip_locked=True)
            due = [dict(r) for r in s.execute(query).mappings()]
            for row in due:
                s.execute(update(d).where(d.c.key == row["key"]).values(next_at=now + LEASE))
        sent = 0
        for row in due:
            channel = dict(domain.channels_of(row["unit"])).get(row["channel"])
            try:
                if channel is None:
                    raise LookupError(f"channel {row['channel']} is no longer configured")
                channels.send(row, channel)
            except Exception as exc:  # noqa: BLE001 - any failure: retry later, say why
                attempts = row["attempts"] + 1
                with self.db.transaction() as s:
                    s.execute(update(d).where(d.c.key == row["key"]).values(
                        attempts=attempts, last_error=f"{type(exc).__name__}: {exc}"[:500],
                        next_at=_now() + timedelta(seconds=domain.backoff_seconds(attempts))))
                (log.error if attempts >= domain.FAILING_AFTER else log.warning)(
                    "notification_failed", key=row["key"], unit=row["unit"],
                    channel=row["channel"], attempts=attempts, error=str(exc)[:200])
                continue
            faults.point("crash_after_send", key=row["key"])
            with self.db.transaction() as s:
                s.execute(update(d).where(d.c.key == row["key"]).values(
                    status="sent", sent_at=_now(), attempts=row["attempts"] + 1))
            sent += 1
        return sent

    @rpc
    def list(self, token, status=None, limit=200):
        """Deliveries: ``pending``, ``failing`` (pending after repeated failures) or
        ``sent``; newest first."""
        require_role(verify_token(token), {"operator", "coordinator"}, "list notifications")
        d = st.deliveries
        query = select(d).order_by(d.c.created_at.desc()).limit(min(int(limit), 1000))
        if status == "failing":
            query = query.where(d.c.status == "pending", d.c.attempts >= domain.FAILING_AFTER)
        elif status:
            query = query.where(d.c.status == status)
        with self.db.session() as s:
            return [{k: (v.isoformat() if isinstance(v, datetime) else v)
                     for k, v in dict(r).items()} for r in s.execute(query).mappings()]

    @rpc
    def health(self):
        """Liveness, and the counts the gateway's /metrics exports."""
        d = st.deliveries
        with self.db.session() as s:
            counts = dict(s.execute(select(d.c.status, func.count()).group_by(d.c.status)).all())
            failing = s.execute(select(func.count()).where(
                d.c.status == "pending", d.c.attempts >= domain.FAILING_AFTER)).scalar()
        return {"service": self.name, "outbox": {"unsent": counts.get("pending", 0)},
                "deliveries": {"pending": counts.get("pending", 0),
                               "sent": counts.get("sent", 0), "failing": failing},
                "revocations": self.revocations.status()}

