"""Administrative penalty decisions (行政处罚决定) for 以罚代刑 supervision: reading an
import file (CSV or XLSX), checking each row, evaluating it against the judgment
standards and telling whether a criminal referral covers it. Plain Python.

The layout is ``contracts/supervision/README.md`` (generated from ``COLUMNS``). A row
that fails is reported as ``{line, field, reason}`` (line as a spreadsheet shows it:
the header is line 1) and left out; the others are imported.
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import zipfile
from datetime import date, datetime
from decimal import Decimal

from marshmallow import ValidationError

from shared.errors import InvalidInput
from shared.schemas.common import COUNTIES, json_safe, schema_instance
from shared.schemas.supervision_inquiry import PenaltyDecisionSchema
from shared.standards import FactError, judgment_rules

# field, header in Chinese, required, what it holds
COLUMNS: list[tuple[str, str, bool, str]] = [
    ("case_number", "案件编号", True, "the penalty case number (行政处罚决定书文号), unique: "
     "importing it again updates the same decision"),
    ("decided_on", "处罚决定日期", True, "YYYY-MM-DD (an Excel date cell is read as such)"),
    ("county", "县区", True, "county code: " + ", ".join(COUNTIES)),
    ("unit", "执法单位", True, "the deciding agency's unit id (e.g. lucheng-bureau); the "
     "inquiry goes to it"),
    ("parties", "当事人", True, "one or more, separated by ';': a name, optionally "
     "'name:ID number or credit code' (张三:330302199001011234; 温州某客运公司)"),
    ("plate", "车牌号", False, "vehicle plate, e.g. 浙C12345"),
    ("offence_code", "违法行为代码", False, "the offence code of the case system"),
    ("facts", "判定事实", False, "the measured facts as a JSON object, with the names of "
     "contracts/standards/judgment.yaml (e.g. {\"vehicle_category\": \"passenger_bus\", "
     "\"service_type\": \"passenger_transport\", \"rated_seats\": 50, \"passengers\": 65})"),
    ("summary", "违法事实", False, "the facts as written in the decision (text)"),
    ("penalty", "处罚内容", True, "the penalty imposed (text), e.g. 罚款2000元、记分"),
    ("fine_yuan", "罚款金额（元）", False, "the fine in yuan, e.g. 2000 or 2000.00"),
]
FIELDS = [c[0] for c in COLUMNS]
HEADER_ALIASES = {**{c[0]: c[0] for c in COLUMNS}, **{c[1]: c[0] for c in COLUMNS}}
MAX_ROWS = 100_000
XLSX_MAGIC = b"PK\x03\x04"


def _header(cells: list) -> list[str | None]:
    """Field of each column (English field name or the Chinese title; None: ignored)."""
    names = [HEADER_ALIASES.get(str(c).strip().lstrip("\ufeff")) if c is not None else None
             for c in cells]
    missing = [f for f, _t, required, _d in COLUMNS if required and f not in names]
    if missing:
        raise InvalidInput("the file's first line lacks required columns", {"header": [
            "missing: " + ", ".join(f"{f} ({dict((c[0], c[1]) for c in COLUMNS)[f]})"
                                    for f in missing)]})
    return names


def _decode(content: bytes) -> str:
    """UTF-8 (with or without BOM); Excel's 'CSV' on a Chinese Windows is GB18030."""
    try:
        return content.decode("utf-8-sig")
    except UnicodeDecodeError:
        try:
            return content.decode("gb18030")
        except UnicodeDecodeError:
            raise InvalidInput("the CSV file is neither UTF-8 nor GB18030 text",
                               {"file": ["save it as CSV UTF-8"]}) from None


def read_csv(content: bytes) -> list[tuple[int, dict]]:
    text = _decode(content)
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        first = next(reader, None)
        if first is None:
            raise InvalidInput("the file is empty", {"file": ["no header line"]})
        names = _header(first)
        rows = []
        for cells in reader:
            if not any(c.strip() for c in cells):
                continue
            rows.append((reader.line_num, _cells(names, cells)))
            if len(rows) > MAX_ROWS:
                raise _too_many()
    except csv.Error as exc:
        raise InvalidInput("the CSV file cannot be read", {
            "file": [f"line {reader.line_num}: {exc}"]}) from None
    return rows


def read_xlsx(content: bytes) -> list[tuple[int, dict]]:
    from openpyxl import load_workbook
    try:
        wb = load_workbook(io.BytesIO(content), read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, OSError, ValueError) as exc:
        raise InvalidInput("the XLSX file cannot be read", {"file": [str(exc)]}) from None
    try:
        ws = wb.worksheets[0]
        it = ws.iter_rows(values_only=True)
        first = next(it, None)
        if first is None:
            raise InvalidInput("the file is empty", {"file": ["no header row"]})
        names = _header(list(first))
        rows = []
        for number, cells in enumerate(it, start=2):
            if not any(c not in (None, "") for c in cells):
                continue
            rows.append((number, _cells(names, list(cells))))
            if len(rows) > MAX_ROWS:
                raise _too_many()
        return rows
    finally:
        wb.close()


def _too_many() -> InvalidInput:
    return InvalidInput(f"more than {MAX_ROWS} rows in one file",
                        {"file": [f"split it into files of at most {MAX_ROWS} rows"]})


def _cells(names: list[str | None], cells: list) -> dict:
    return {name: cells[i] for i, name in enumerate(names)
            if name is not None and i < len(cells) and cells[i] not in (None, "")}


def read_file(filename: str, content: bytes) -> list[tuple[int, dict]]:
    """(line, raw fields) of each non-empty row of a CSV or XLSX file."""
    if content.startswith(XLSX_MAGIC) or filename.lower().endswith(".xlsx"):
        return read_xlsx(content)
    if filename.lower().endswith((".csv", ".txt")) or not filename:
        return read_csv(content)
    raise InvalidInput(f"unknown file type {filename!r}", {"file": ["a .csv or .xlsx file"]})


def fingerprint(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


# --------------------------------------------------------------------------- one row

def _text(value) -> str:
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def parse_parties(value) -> list[dict]:
    parties = []
    for part in re.split(r"[;；\n]", _text(value)):
        if not part.strip():
            continue
        name, _sep, number = part.replace("：", ":").partition(":")
        parties.append({"name": name.strip(), "id_number": number.strip() or None})
    return parties


def from_cells(raw: dict) -> dict:
    """A file row's cells as the push API's JSON (parties and facts parsed)."""
    out = {k: (_text(v) if k not in ("fine_yuan",) else v) for k, v in raw.items()}
    if "parties" in raw:
        out["parties"] = parse_parties(raw["parties"])
    if "facts" in raw:
        try:
            out["facts"] = json.loads(_text(raw["facts"]))
        except json.JSONDecodeError as exc:
            out["facts"] = _BadJson(exc.msg)
    if isinstance(out.get("fine_yuan"), float | int) and not isinstance(out["fine_yuan"], bool):
        out["fine_yuan"] = str(Decimal(str(out["fine_yuan"])))
    elif "fine_yuan" in out:
        out["fine_yuan"] = _text(out["fine_yuan"]).replace(",", "")
    return out


class _BadJson(str):
    """A facts cell that is not JSON (reported with the parser's message)."""


def _flatten(messages, prefix: str = "") -> list[tuple[str, str]]:
    if isinstance(messages, dict):
        return [pair for k, v in messages.items()
                for pair in _flatten(v, f"{prefix}.{k}" if prefix else str(k))]
    if isinstance(messages, list) and messages and all(isinstance(m, str) for m in messages):
        return [(prefix, "; ".join(messages))]
    if isinstance(messages, list):
        return [pair for m in messages for pair in _flatten(m, prefix)]
    return [(prefix, str(messages))]


def check(data) -> tuple[dict | None, list[dict]]:
    """A decision loaded and checked: (decision, []) or (None, [{field, reason}, ...])."""
    if not isinstance(data, dict):
        return None, [{"field": "row", "reason": "must be an object"}]
    errors = []
    if isinstance(data.get("facts"), _BadJson):
        errors.append({"field": "facts", "reason": f"not a JSON object: {data['facts']}"})
        data = {k: v for k, v in data.items() if k != "facts"}
    try:
        decision = json_safe(schema_instance(PenaltyDecisionSchema).load(data))
    except ValidationError as exc:
        errors += [{"field": f, "reason": r} for f, r in _flatten(exc.messages)]
        return None, errors
    try:
        decision["facts"] = judgment_rules().validate_facts(decision["facts"])
    except FactError as exc:
        errors += [{"field": f"facts.{f}", "reason": ", ".join(m)}
                   for f, m in sorted(exc.errors.items())]
    if any("\x00" in str(v) for v in decision.values()):
        errors.append({"field": "row", "reason": "text must not contain NUL characters"})
    return (None, errors) if errors else (decision, [])


# --------------------------------------------------------------------------- matching

def evaluate(facts: dict) -> list[dict]:
    """The judgment rules with a criminal route the facts meet: rule, offence, the
    threshold crossed (the arithmetic) and its basis."""
    return [{"rule_id": r.rule_id, "title": r.title, "title_en": r.title_en,
             "suspected_offence": r.suspected_offence, "legal_basis": r.legal_basis,
             "threshold_crossed": r.explanation, "threshold_source": r.threshold_source}
            for r in judgment_rules().evaluate(facts) if r.route == "police"]


def plate_key(plate: str | None) -> str | None:
    if not plate:
        return None
    return re.sub(r"[\s·.\-]", "", plate).upper() or None


def party_keys(parties: list[dict]) -> list[str]:
    """What identifies the parties: their ID numbers (upper case) and names."""
    keys = set()
    for p in parties or []:
        if p.get("id_number"):
            keys.add("id:" + str(p["id_number"]).strip().upper())
        if p.get("name"):
            keys.add("name:" + re.sub(r"\s", "", str(p["name"])))
    return sorted(keys)


def covers(referral: dict, decision: dict) -> str | None:
    """Why ``referral`` (a criminal referral) covers ``decision``, or None: the same
    case number, or the same plate and at least one common party (by ID number or
    name). The plate alone is not enough: a vehicle has many cases."""
    if referral["case_number"] == decision["case_number"]:
        return "case_number"
    plate = plate_key(decision.get("plate"))
    if plate and referral.get("plate_key") == plate and \
            set(referral.get("party_keys") or []) & set(party_keys(decision["parties"])):
        return "plate_and_party"
    return None
