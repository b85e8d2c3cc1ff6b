"""Official forms rendered from a handoff's data: Jinja2 HTML templates (templates/)
printed to A4 PDF by WeasyPrint, with Debian's Noto CJK fonts (fonts-noto-cjk,
installed by ``make debs``). Which forms each procedure has, and under which case-file
kind a generated form is filed, is data: ``case_file.forms`` in its standard."""
from __future__ import annotations

from datetime import datetime
from functools import cache
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape

from shared import calendar, casefile
from shared.errors import NotFound, Unavailable
from shared.standards import load_standard

TEMPLATES = Path(__file__).resolve().parent / "templates"
PARTY_ROLES = {"driver": "驾驶员", "owner": "车辆所有人", "operator": "经营者",
               "intermediary": "中介", "party": "当事人", "other": "其他"}


@cache
def _env() -> Environment:
    return Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape())


def form_of(kind: str, form: str) -> dict:
    found = casefile.forms(kind).get(form)
    if found is None:
        raise NotFound(f"a {kind} has no form {form!r}",
                       {"form": [f"one of: {', '.join(casefile.forms(kind)) or 'none'}"]})
    return found


def html(kind: str, form: str, rec: dict, now: datetime) -> str:
    spec = form_of(kind, form)
    standard = load_standard(kind)
    files = rec.get("files", [])
    by_kind: dict[str, list] = {}
    for f in files:
        by_kind.setdefault(f["kind"], []).append(f)
    local = calendar.to_local(now)
    documents = rec.get("documents") if isinstance(rec.get("documents"), dict) else {}
    return _env().get_template(f"{form}.html").render(
        form=spec, rec=rec, files=files, files_by_kind=by_kind,
        kinds=standard.get("documents", []), documents=documents,
        agency=rec.get("owner_unit", ""), roles=PARTY_ROLES,
        copy_title=(standard.get("procuratorate_copy") or {}).get("title", ""),
        today=f"{local.year} 年 {local.month} 月 {local.day} 日",
        generated=local.strftime("%Y-%m-%d %H:%M"))


def render(kind: str, form: str, rec: dict, now: datetime) -> bytes:
    try:
        from weasyprint import HTML  # imported on first use: it loads Pango
    except OSError as exc:   # Debian's Pango missing: `make form-debs`
        raise Unavailable("the PDF forms need Debian's Pango (make form-debs)",
                          {"form": [str(exc)[:200]]}) from None
    return HTML(string=html(kind, form, rec, now), base_url=str(TEMPLATES)).write_pdf()
