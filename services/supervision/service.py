"""nameko adapter of the 以罚代刑 supervision service: imports of administrative penalty
decisions (file or API push), the candidates among them for the procuratorate, the
inquiry procedure (the shared handoff RPC: act, get, list, procedure), statistics, and
the index of criminal referrals kept from police_handoff's events."""
from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime, timezone

from sqlalchemy import func, insert, select, update

from services.supervision import domain, importer, penalties
from services.supervision import store as st
from shared import handoffs as handoff  # module import: nameko run must not see the base
from shared.auth import require_role, verify_token
from shared.errors import InvalidInput, NotFound, bounded
from shared.logging import configure_logging
from shared.messaging import claim_many
from shared.nameko_ext import Database, OutboxRelay, on_event, rpc
from shared.standards import judgment_rules
from shared.tokenkeys import check_startup

configure_logging("supervision")
check_startup("supervision")   # production: no start without fit token keys
domain.procedure()             # a bad SUPERVISION_INQUIRY_PERIODS stops the start
judgment_rules()

CONSUMER = "supervision.referrals"
FILTERS = ("candidates", "suspects", "all")


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _import_row(row) -> dict:
    out = {k: row[k] for k in ("id", "filename", "source", "sha256", "actor", "rows",
                               "inserted", "updated", "unchanged", "rejected", "suspects",
                               "errors")}
    return {**out, "at": row["at"].isoformat()}


class SupervisionService(handoff.HandoffService):
    name = "supervision"
    domain = domain
    handoffs = st.handoffs

    db = Database(st.store)
    relay = OutboxRelay(st.store)

    # ------------------------------------------------------------------ imports
    @rpc
    def import_file(self, token, filename, content_b64):
        """Import a CSV or XLSX file (base64): every good row is imported, every bad one
        reported as {line, field, reason}; all of it in one transaction."""
        actor = verify_token(token)
        require_role(actor, domain.IMPORTERS, "import penalty decisions")
        try:
            content = base64.b64decode(content_b64 or "", validate=True)
        except (binascii.Error, TypeError, ValueError):
            raise InvalidInput("the file content is not base64", {"file": ["base64"]}) from None
        if not content:
            raise InvalidInput("the file is empty", {"file": ["no content"]})
        rows = [(line, penalties.from_cells(raw))
                for line, raw in penalties.read_file(str(filename or ""), content)]
        return self._import(actor, "file", str(filename or "")[:300],
                            penalties.fingerprint(content), rows)

    @rpc
    def import_decisions(self, token, decisions):
        """The case system's push: a list of decisions (JSON, the file's fields; parties
        a list of {name, id_number}); ``line`` in errors is the item's 1-based number."""
        actor = verify_token(token)
        require_role(actor, domain.IMPORTERS, "import penalty decisions")
        if not isinstance(decisions, list) or not decisions:
            raise InvalidInput("decisions must be a non-empty list",
                               {"decisions": ["a list of penalty decisions"]})
        if len(decisions) > penalties.MAX_ROWS:
            raise InvalidInput("too many decisions in one request",
                               {"decisions": [f"at most {penalties.MAX_ROWS}"]})
        body = json.dumps(decisions, sort_keys=True, ensure_ascii=False, default=str)
        return self._import(actor, "api", None, penalties.fingerprint(body.encode()),
                            list(enumerate(decisions, start=1)))

    def _import(self, actor, source, filename, sha, rows) -> dict:
        return importer.run(self.db, actor, source, filename, sha, rows, _now())

    @rpc
    def imports(self, token, limit=50):
        """The latest imports (who, when, counts; the errors of each by ``import_status``)."""
        domain.require_reader(verify_token(token), "see imports")
        limit = bounded(limit, "limit", 1, 500)
        with self.db.session() as s:
            rows = s.execute(select(st.imports).order_by(st.imports.c.at.desc())
                             .limit(limit)).mappings().all()
        return [{**_import_row(r), "errors": len(r["errors"])} for r in rows]

    @rpc
    def import_status(self, token, import_id):
        domain.require_reader(verify_token(token), "see imports")
        with self.db.session() as s:
            row = s.execute(select(st.imports).where(st.imports.c.id == import_id)) \
                .mappings().first()
        if row is None:
            raise NotFound(f"no import {import_id}", {"id": ["not found"]})
        return _import_row(row)

    # ------------------------------------------------------------------ decisions
    def _covering(self, s, decisions: list[dict]) -> dict[str, list[dict]]:
        """case number -> the criminal referrals that cover that decision."""
        r = st.referrals
        numbers = [x["case_number"] for x in decisions]
        plates = sorted({k for x in decisions if (k := penalties.plate_key(x.get("plate")))})
        found = {}
        for keys in importer.chunks(numbers):
            for row in s.execute(select(r).where(r.c.case_number.in_(keys))).mappings():
                found[row["referral_id"]] = dict(row)
        for keys in importer.chunks(plates):
            for row in s.execute(select(r).where(r.c.plate_key.in_(keys))).mappings():
                found[row["referral_id"]] = dict(row)
        out = {}
        for x in decisions:
            out[x["case_number"]] = [ref for ref in found.values()
                                     if penalties.covers(ref, x)]
        return out

    def _inquiries(self, s, case_numbers: list[str]) -> dict[str, list[dict]]:
        h = self.handoffs.handoffs
        out: dict[str, list[dict]] = {}
        for keys in importer.chunks(case_numbers):
            for row in s.execute(select(h.c.doc).where(h.c.case_number.in_(keys))
                                 .order_by(h.c.created_at)):
                out.setdefault(row.doc["case_number"], []).append(row.doc)
        return out

    def _statuses(self, s, docs: list[dict]) -> list[dict]:
        covering = self._covering(s, docs)
        inquiries = self._inquiries(s, [x["case_number"] for x in docs])
        return [domain.status(x, covering[x["case_number"]],
                              inquiries.get(x["case_number"], [])) for x in docs]

    @rpc
    def decisions(self, token, show="candidates", county=None, limit=200, offset=0):
        """Imported decisions the caller may see, latest first: ``candidates`` (meet a
        criminal threshold, no criminal referral covers them), ``suspects`` (meet one)
        or ``all``."""
        actor = verify_token(token)
        domain.require_reader(actor)
        if show not in FILTERS:
            raise InvalidInput(f"unknown filter {show!r}", {"show": list(FILTERS)})
        limit, skip = bounded(limit, "limit", 1, 1000), bounded(offset, "offset", 0, 10**7)
        d = st.decisions
        query = select(d.c.doc).order_by(d.c.decided_on.desc(), d.c.case_number)
        if show != "all":
            query = query.where(d.c.suspect.is_(True))
        scope = domain.decision_county(actor)
        if scope or county:
            if scope and county and county != scope:
                return []
            query = query.where(d.c.county == (scope or county))
        out: list[dict] = []
        scanned = 0
        with self.db.session() as s:
            while len(out) < limit:
                docs = [r.doc for r in s.execute(query.limit(importer.CHUNK).offset(scanned))]
                scanned += len(docs)
                for x in self._statuses(s, docs):
                    if show == "candidates" and not x["candidate"]:
                        continue
                    if skip:
                        skip -= 1
                    elif len(out) < limit:
                        out.append(x)
                if len(docs) < importer.CHUNK:
                    break
        return out

    @rpc
    def decision(self, token, decision_id):
        """One decision with the rules it meets (threshold crossed, basis), the criminal
        referrals that cover it and its inquiries."""
        actor = verify_token(token)
        domain.require_reader(actor)
        with self.db.session() as s:
            row = s.execute(select(st.decisions.c.doc).where(
                st.decisions.c.case_number == decision_id)).first()
            if row is None or not domain.may_see_decision(actor, row.doc):
                raise NotFound(f"no penalty decision {decision_id}", {"id": ["not found"]})
            return self._statuses(s, [row.doc])[0]

    @rpc
    def statistics(self, token):
        """Decisions imported, matches, referred, candidates, inquiries by state and the
        transfers that followed an inquiry (for the caller's scope)."""
        actor = verify_token(token)
        domain.require_reader(actor)
        d = st.decisions
        scope = domain.decision_county(actor)
        with self.db.session() as s:
            count = select(func.count()).select_from(d)
            suspects = select(d.c.doc).where(d.c.suspect.is_(True))
            if scope:
                count, suspects = count.where(d.c.county == scope), \
                    suspects.where(d.c.county == scope)
            total = s.execute(count).scalar_one()
            docs = [r.doc for r in s.execute(suspects)]
            covering = self._covering(s, docs)
            referred = {k for k, v in covering.items() if v}
            inquiries = [i for rows in self._inquiries(s, [x["case_number"] for x in docs])
                         .values() for i in rows if self.domain.can_view(actor, i)]
            for i in inquiries:
                i["referral_after"] = any(
                    r["drafted_at"].isoformat() >= i["created_at"]
                    for r in covering.get(i["case_number"], []))
            imports = s.execute(select(func.count()).select_from(st.imports)).scalar_one()
        return domain.statistics(total, docs, referred, inquiries, imports)

    # ------------------------------------------------------------------ the inquiry
    @rpc
    def create(self, token, command, payload, idempotency_key=None):
        """Open an inquiry (``open_inquiry``) from a decision that meets a criminal
        threshold: the procuratorate asks the agency why it was not transferred."""
        actor = verify_token(token)
        if command != "open_inquiry":
            raise InvalidInput(f"{command!r} does not create a {domain.KIND}",
                               {"command": ["open_inquiry"]})
        decision_id = payload.get("decision_id") if isinstance(payload, dict) else None
        h = self.handoffs.handoffs

        def work(s):
            row = s.execute(select(st.decisions.c.doc).where(
                st.decisions.c.case_number == str(decision_id))).first() \
                if decision_id else None
            open_ = [r.doc for r in s.execute(select(h.c.doc).where(
                h.c.case_number == str(decision_id),
                h.c.state.in_(["awaiting_answer", "transfer_pending", "explained",
                               "transfer_required"])))] if decision_id else []
            rec, step = domain.open_inquiry(actor, payload, row.doc if row else None,
                                            open_, _now())
            self.handoffs.save(s, rec, step, domain.event_payload(rec, step), 0)
            return handoff.public(rec)
        return self._once(actor, idempotency_key, ("create", command, payload), work)

    # ------------------------------------------------------------------ referrals index
    @on_event(CONSUMER)
    def on_referral_event(self, envelope):
        """Keep the criminal referrals (case number, plate, parties, state) that decide
        whether a decision is covered; once per event (inbox)."""
        data = envelope["data"]
        r = st.referrals
        with self.db.transaction() as s:
            if not claim_many(s, st.metadata, CONSUMER, [envelope]):
                return "duplicate"
            details = data.get("details") or {}
            exists = s.execute(select(r.c.referral_id).where(
                r.c.referral_id == data["handoff_id"])).first()
            if envelope["type"] == "criminal_referral.drafted.v1" and not exists:
                s.execute(insert(r), {
                    "referral_id": data["handoff_id"], "case_number": data["case_number"],
                    "plate_key": penalties.plate_key(details.get("plate")),
                    "party_keys": penalties.party_keys(details.get("parties") or []),
                    "county": data.get("county"), "owner_unit": data["owner_unit"],
                    "state": data["state"],
                    "drafted_at": datetime.fromisoformat(data["at"])})
                return "indexed"
            if exists:
                s.execute(update(r).where(r.c.referral_id == data["handoff_id"])
                          .values(state=data["state"]))
                return "updated"
        return "ignored"
