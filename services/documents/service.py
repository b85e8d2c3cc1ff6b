"""nameko adapter of the documents service: what is known of each stored blob, the
download audit, the re-hash of every blob (``liandong audit``), and the official forms
(rendered from a handoff's data, and filed into its case file with one action).

The bytes themselves never travel over RPC: the gateway streams uploads and downloads
between HTTP and the blob store (shared/blobstore.py); the handoff's own service keeps
the document records (shared/handoffs.py ``attach_file``). Who may see a document is
decided there, by the handoff's read rule: this service is asked only afterwards.
"""
from __future__ import annotations

import base64
from datetime import UTC, datetime

import structlog
from eventlet import tpool
from sqlalchemy import insert, select, update

from services.documents import forms
from services.documents import store as st
from shared import blobstore, casefile
from shared.auth import require_role, verify_token
from shared.errors import InvalidInput, NotFound, bounded
from shared.logging import configure_logging
from shared.nameko_ext import Database, RpcProxy, rpc
from shared.revocations import Revocations
from shared.tokenkeys import check_startup

configure_logging("documents")
check_startup("documents")   # production: no start without fit token keys
log = structlog.get_logger(__name__)

# the handoff services whose case files this service serves (RPC name)
HANDOFF_SERVICES = ("police_handoff", "market_referral", "command")
OVERSEERS = {"operator", "coordinator", "system"}


def _now() -> datetime:
    return datetime.now(UTC)


class DocumentsService:
    name = "documents"

    db = Database(st.store)
    revocations = Revocations()      # refuses revoked tokens, fails closed
    police_handoff = RpcProxy("police_handoff")
    market_referral = RpcProxy("market_referral")
    command = RpcProxy("command")

    def _handoff_service(self, service: str):
        if service not in HANDOFF_SERVICES:
            raise NotFound(f"no handoff service {service!r}", {"service": ["unknown"]})
        return getattr(self, service)

    @rpc
    def health(self):
        with self.db.session() as s:
            s.execute(select(st.blobs.c.sha256).limit(1)).all()
        return {"service": self.name, "outbox": {"unsent": 0},
                "store": blobstore.store().describe()}

    # ------------------------------------------------------------------ blobs
    @rpc
    def register(self, token, blob):
        """Note a stored blob (size, media type) once; the gateway calls it after a
        file was filed."""
        verify_token(token)
        sha = blob.get("sha256", "")
        if not blobstore.SHA256.match(str(sha)):
            raise InvalidInput("not a SHA-256", {"sha256": ["64 hex digits"]})
        with self.db.transaction() as s:
            if s.execute(select(st.blobs.c.sha256).where(st.blobs.c.sha256 == sha)).first():
                return {"sha256": sha, "new": False}
            s.execute(insert(st.blobs), {"sha256": sha, "size": int(blob["size"]),
                                         "media_type": blob["media_type"],
                                         "stored_at": _now(), "status": "ok"})
        return {"sha256": sha, "new": True}

    @rpc
    def record_download(self, token, entry):
        """The audit record of one download (who, when, which file, which range),
        written before the first byte is sent."""
        actor = verify_token(token)
        with self.db.transaction() as s:
            s.execute(insert(st.downloads), {
                "at": _now(), "handoff_kind": entry["handoff_kind"],
                "handoff_id": entry["handoff_id"], "document_id": entry["document_id"],
                "sha256": entry["sha256"], "user_id": actor.user_id, "role": actor.role,
                "unit": actor.unit, "byte_range": entry.get("range")})
        return True

    @rpc
    def downloads(self, token, handoff_id=None, limit=200):
        """Who downloaded what, newest first (operators and coordinators)."""
        require_role(verify_token(token), OVERSEERS, "read the download audit")
        limit = bounded(limit, "limit", 1, 10000)
        q = select(st.downloads).order_by(st.downloads.c.id.desc()).limit(limit)
        if handoff_id:
            q = q.where(st.downloads.c.handoff_id == handoff_id)
        with self.db.session() as s:
            return [{**dict(r), "at": r["at"].isoformat()} for r in s.execute(q).mappings()]

    @rpc
    def verify(self, token):
        """Re-hash every stored blob (the store's and the registered ones): which are
        missing or altered. Each blob's last check is kept."""
        require_role(verify_token(token), OVERSEERS, "verify every stored document")
        store = blobstore.store()
        with self.db.session() as s:
            registered = {r.sha256 for r in s.execute(select(st.blobs.c.sha256))}
        names = sorted(registered | set(store.all()))
        result = {"store": store.describe(), "checked": 0, "missing": [], "altered": [],
                  "unregistered": []}
        for sha in names:
            status = tpool.execute(store.check, sha)
            result["checked"] += 1
            if status != "ok":
                result[status].append(sha)
                log.error("blob_" + status, sha256=sha, store=store.describe())
            if sha not in registered and status == "ok":
                result["unregistered"].append(sha)
            with self.db.transaction() as s:
                s.execute(update(st.blobs).where(st.blobs.c.sha256 == sha).values(
                    status=status, checked_at=_now()))
        return result

    # ------------------------------------------------------------------ forms
    def _render(self, token, service, handoff_id, form, filing=False):
        rec = self._handoff_service(service).form_record(token, handoff_id)
        kind = rec["kind"]
        forms.form_of(kind, form)
        if filing:       # refused before rendering; attach_file checks it again
            casefile.check_form_not_filed(rec, form)
        pdf = tpool.execute(forms.render, kind, form, rec, _now())
        return rec, pdf

    @rpc
    def render_form(self, token, service, handoff_id, form):
        """An official form of a handoff the caller may see, as PDF (base64)."""
        rec, pdf = self._render(token, service, handoff_id, form)
        return {"filename": f"{rec['case_number']}-{forms.form_of(rec['kind'], form)['title']}"
                            ".pdf", "pdf": base64.b64encode(pdf).decode("ascii")}

    @rpc
    def file_form(self, token, service, handoff_id, form, idempotency_key=None):
        """Render a form and file it in the case file (its kind from the standard),
        like an upload: stored by SHA-256, recorded as a step. Returns the record."""
        rec, pdf = self._render(token, service, handoff_id, form, filing=True)
        spec = forms.form_of(rec["kind"], form)
        svc = self._handoff_service(service)
        svc.check_attach(token, handoff_id, spec["kind"])
        document = {"document_id": blobstore.new_id(), "kind": spec["kind"],
                    "title": spec["title"], "filename": f"{rec['case_number']}-{spec['title']}.pdf",
                    "media_type": "application/pdf", "size": len(pdf), "form": form}
        return blobstore.file_bytes(
            pdf, lambda sha: svc.attach_file(token, handoff_id, {**document, "sha256": sha},
                                             idempotency_key),
            lambda sha: self.register(token, {"sha256": sha, "size": len(pdf),
                                              "media_type": "application/pdf"}))
