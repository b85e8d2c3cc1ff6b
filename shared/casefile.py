"""The case file (卷宗) of a handoff: which document kinds each procedure accepts as
uploaded files, who may upload each and in which states, the official forms, and the
step an upload records. The rules are data: the ``case_file:`` section of each
``contracts/standards/<kind>.yaml``; this module is the one place that reads them.

A ``case_file`` section::

    case_file:
      roles: [enforcement_unit]        # default uploaders of the kinds below
      kinds_from: evidence             # optional: take the kinds of another list
      kinds:
        - {id: transfer_letter, title: 涉嫌犯罪案件移送书, states: [draft, approved]}
        - {id: receipt, title: 移送回执, roles: [police]}
      required_for_transfer: [transfer_letter, ...]   # criminal referrals (art. 6)
      forms:
        - {id: transfer_letter, title: 涉嫌犯罪案件移送书, kind: transfer_letter}

``states`` (optional) are the states in which the kind may be uploaded: outside them the
kind is frozen (the sending side's documents after the transfer). Final states freeze
every kind.
"""
from __future__ import annotations

from datetime import datetime
from functools import cache

import filetype
from marshmallow import fields, validate

from shared.auth import Actor
from shared.errors import InvalidInput, InvalidTransition, NotAllowed
from shared.procedure import Procedure
from shared.schemas.common import Base
from shared.standards import load_standard

MAX_BYTES = 512 * 1024 * 1024     # one file, as the issue sets it
COMMAND = "attach_file"

# media types a case file accepts (checked against the sniffed content)
MEDIA_TYPES = {
    "application/pdf": "PDF",
    "image/jpeg": "JPEG",
    "image/png": "PNG",
    "video/mp4": "MP4 video",
    "application/msword": "Word (.doc)",
    "application/vnd.ms-excel": "Excel (.xls)",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": "Word",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": "Excel",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation":
        "PowerPoint",
}
# the old Office formats share one container (OLE2); the file name tells them apart
OLE2 = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
OLE2_BY_EXTENSION = {".doc": "application/msword", ".xls": "application/vnd.ms-excel"}
GENERIC = {"", "application/octet-stream", "binary/octet-stream"}


@cache
def section(kind: str) -> dict:
    standard = load_standard(kind)
    return standard.get("case_file") or {}


@cache
def kinds(kind: str) -> dict[str, dict]:
    """document kind id -> {id, title, roles, states?} of a procedure's case file."""
    standard = load_standard(kind)
    cf = section(kind)
    default_roles = cf.get("roles", [])
    out: dict[str, dict] = {}
    for entry in (standard.get(cf["kinds_from"], []) if cf.get("kinds_from") else []) + \
            cf.get("kinds", []):
        out[entry["id"]] = {"id": entry["id"], "title": entry["title"],
                            "title_en": entry.get("title_en"),
                            "roles": list(entry.get("roles", default_roles)),
                            "states": entry.get("states"),
                            "article": entry.get("article")}
    return out


def forms(kind: str) -> dict[str, dict]:
    return {f["id"]: f for f in section(kind).get("forms", [])}


def required_for_transfer(kind: str) -> list[str]:
    return list(section(kind).get("required_for_transfer", []))


def describe(kind: str) -> dict:
    """The case file's rules as the console and CLI show them."""
    return {"kinds": list(kinds(kind).values()), "forms": list(forms(kind).values()),
            "required_for_transfer": required_for_transfer(kind),
            "max_bytes": MAX_BYTES, "media_types": MEDIA_TYPES}


def check_upload(kind: str, rec: dict, actor: Actor, doc_kind: str) -> dict:
    """Refuse an upload of ``doc_kind`` to ``rec`` by ``actor`` unless the procedure
    allows it now (the caller has checked that the actor may see the handoff)."""
    known = kinds(kind)
    if doc_kind not in known:
        raise InvalidInput(f"{doc_kind!r} is not a document kind of a {kind}",
                           {"kind": [f"one of: {', '.join(known)}"]})
    entry = known[doc_kind]
    if actor.role not in entry["roles"]:
        raise NotAllowed(f"role {actor.role!r} may not add a {entry['title']}",
                         {"kind": [f"uploaded by: {', '.join(entry['roles'])}"]})
    proc = Procedure.load(kind)
    state = rec["state"]
    if proc.is_final(state) or (entry["states"] and state not in entry["states"]):
        where = ", ".join(entry["states"] or []) or "open handoffs"
        raise InvalidTransition(
            f"the case file's {entry['title']} is frozen in state {state!r}",
            {"kind": [f"{doc_kind} may be added in: {where}"]})
    return entry


def sniff(head: bytes, declared: str | None, filename: str) -> str:
    """The media type of a file from its first bytes; refuses what the case file does
    not take and a declared type the content contradicts."""
    declared = (declared or "").split(";")[0].strip().lower()
    if head.startswith(OLE2):
        ext = "." + filename.rsplit(".", 1)[-1].lower() if "." in filename else ""
        found = OLE2_BY_EXTENSION.get(ext) or (declared if declared in OLE2_BY_EXTENSION
                                               .values() else None)
        if found is None:
            raise InvalidInput("an old Office file must be named .doc or .xls",
                               {"file": ["unrecognised Office document"]})
    else:
        guess = filetype.guess(head)
        found = guess.mime if guess else None
        if found is None or found not in MEDIA_TYPES:
            raise InvalidInput(
                f"the file's content is {found or 'not a recognised type'}",
                {"file": ["accepted: " + ", ".join(sorted(set(MEDIA_TYPES.values())))]})
    if declared not in GENERIC and declared != found:
        raise InvalidInput(f"the file is declared {declared} but its content is {found}",
                           {"file": [f"content is {found}"]})
    return found


class FileAttachedSchema(Base):
    """The details of a ``<kind>.file_attached.v1`` event: the document's record —
    never the bytes."""
    document_id = fields.String(required=True)
    kind = fields.String(required=True)
    # absent on an upload without a title: the step records the kind's title
    title = fields.String(load_default=None, validate=validate.Length(min=1, max=200))
    filename = fields.String(required=True, validate=validate.Length(min=1, max=255))
    media_type = fields.String(required=True)
    size = fields.Integer(required=True, strict=True, validate=validate.Range(min=1))
    sha256 = fields.String(required=True, validate=validate.Regexp(r"^[0-9a-f]{64}$"))
    form = fields.String(load_default=None, allow_none=True)


def event_type(kind: str) -> str:
    return f"{kind}.file_attached.v1"


def attach(kind: str, rec: dict, actor: Actor, document: dict,
           now: datetime) -> tuple[dict, dict]:
    """The record with ``document`` in its case file, and the step that records it
    (who, when, size, media type, SHA-256: the step's details enter the hash chain)."""
    entry = check_upload(kind, rec, actor, document["kind"])
    check_form_not_filed(rec, document.get("form"))
    details = {"document_id": document["document_id"], "kind": document["kind"],
               "title": document.get("title") or entry["title"],
               "filename": document["filename"], "media_type": document["media_type"],
               "size": int(document["size"]), "sha256": document["sha256"],
               "form": document.get("form")}
    record = {**details, "id": details["document_id"], "kind_title": entry["title"],
              "uploaded_by": actor.to_dict(), "uploaded_at": now.isoformat()}
    step_no = rec["step"] + 1
    new = {**rec, "files": [*rec.get("files", []), record], "step": step_no,
           "updated_at": now.isoformat()}
    step = {"command": COMMAND, "event": event_type(kind), "title": "案卷归档：" + entry["title"],
            "article": entry.get("article"), "from": rec["state"], "to": rec["state"],
            "step": step_no, "at": now.isoformat(), "actor": actor.to_dict(),
            "satisfied": [], "details": details}
    return new, step


def check_form_not_filed(rec: dict, form: str | None) -> None:
    """A generated form is filed once per case file: filing it again (a double click,
    a retry) is refused with 409 naming the document already filed, not a duplicate.
    A later version of a paper goes in as an upload of its kind."""
    earlier = next((f for f in rec.get("files", []) if form and f.get("form") == form), None)
    if earlier is not None:
        raise InvalidTransition(
            f"the form {form!r} is already in the case file ({earlier['id']})",
            {"form": [f"filed as document {earlier['id']} on {earlier['uploaded_at']}"]},
            code="already_filed")


def present_kinds(rec: dict) -> set[str]:
    return {f["kind"] for f in rec.get("files", [])}


def find(rec: dict, document_id: str) -> dict | None:
    return next((f for f in rec.get("files", []) if f["id"] == document_id), None)
