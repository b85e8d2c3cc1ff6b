"""Building blocks shared by every kind of handoff: parties with validated ID numbers
and credit codes, documents, counties."""
from __future__ import annotations

import functools
from datetime import date
from decimal import Decimal

from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate, validates_schema
from stdnum.cn import ric, uscc
from stdnum.exceptions import ValidationError as StdnumError

# Wenzhou's 12 county-level districts (code -> name); the city itself is "wenzhou".
COUNTIES = {
    "lucheng": "鹿城区", "longwan": "龙湾区", "ouhai": "瓯海区", "dongtou": "洞头区",
    "ruian": "瑞安市", "yueqing": "乐清市", "longgang": "龙港市", "yongjia": "永嘉县",
    "pingyang": "平阳县", "cangnan": "苍南县", "wencheng": "文成县", "taishun": "泰顺县",
}
ID_TYPES = ("resident_id", "uscc", "passport", "other")
# first character of a unified social credit code: the registration authority
# (GB 32100-2015 table 1: 机构编制, 外交, 司法行政, 文化, 民政, 旅游, 宗教, 工会, 市场监管,
# 中央军委改革和编制办公室, 农业, 其他)
USCC_AUTHORITIES = "123456789ANY"


class Base(Schema):
    """Tolerant reader: unknown fields are ignored, never an error."""

    class Meta:
        unknown = EXCLUDE


def check_id_number(id_type: str, number: str) -> str:
    """Validate with python-stdnum; return the compact form or raise ValidationError."""
    try:
        if id_type == "resident_id":
            compact = ric.validate(number)
            born = ric.get_birth_date(compact)
            if not date(1900, 1, 1) <= born <= date.today():
                raise ValidationError("not a valid resident ID number (居民身份证号码): its "
                                      f"birth date {born.isoformat()} is not a past date")
            return compact
        if id_type == "uscc":
            compact = uscc.validate(number)
            if compact[0] not in USCC_AUTHORITIES or compact[2:8] == "000000":
                raise ValidationError(
                    "not a valid unified social credit code (统一社会信用代码): its "
                    "registration authority or region code does not exist (GB 32100-2015)")
            return compact
    except StdnumError as exc:
        label = "resident ID number (居民身份证号码)" if id_type == "resident_id" \
            else "unified social credit code (统一社会信用代码)"
        raise ValidationError(f"not a valid {label}: {exc.message}") from None
    return number.strip()


class PartySchema(Base):
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    role = fields.String(load_default="party", validate=validate.OneOf(
        ["driver", "owner", "operator", "intermediary", "party", "other"]))
    id_type = fields.String(required=True, validate=validate.OneOf(ID_TYPES))
    id_number = fields.String(required=True, validate=validate.Length(min=1, max=40))
    phone = fields.String(load_default=None, allow_none=True,
                          validate=validate.Regexp(r"^\+?[0-9-]{5,20}$"))

    @validates_schema
    def _id_number_valid(self, data, **_kw):
        if "id_type" in data and "id_number" in data:
            try:
                check_id_number(data["id_type"], data["id_number"])
            except ValidationError as exc:
                raise ValidationError(exc.messages, field_name="id_number") from None


class OfficerSchema(Base):
    name = fields.String(required=True, validate=validate.Length(min=1, max=100))
    badge_number = fields.String(required=True, validate=validate.Length(min=1, max=40))


class DocumentSchema(Base):
    kind = fields.String(required=True)
    title = fields.String(required=True, validate=validate.Length(min=1, max=300))
    reference = fields.String(load_default=None, allow_none=True,
                              validate=validate.Length(max=200))
    sha256 = fields.String(load_default=None, allow_none=True,
                           validate=validate.Regexp(r"^[0-9a-f]{64}$"))


county_field = fields.String(required=True, validate=validate.OneOf(list(COUNTIES)))


class IsoDate(fields.Date):
    """A calendar date (YYYY-MM-DD) in 2000–2099, checked on load and kept as its ISO
    text, so the loaded payload stays plain JSON (a date of a document, a judgment, a
    payment)."""

    def _deserialize(self, value, attr, data, **kwargs):
        return _in_years(super()._deserialize(value, attr, data, **kwargs)).isoformat()


class Moment(fields.AwareDateTime):
    """A point in time with its UTC offset (ISO 8601), in 2000–2099."""

    def __init__(self, **kwargs):
        super().__init__(format="iso", **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        return _in_years(super()._deserialize(value, attr, data, **kwargs))


def _in_years(value):
    from shared.boundaries import year_error
    problem = year_error(value)
    if problem:
        raise ValidationError(problem)
    return value


def yuan(**kwargs):
    """An amount of money in yuan: a decimal from 0 to MAX_YUAN, kept as text."""
    from shared.boundaries import MAX_YUAN
    return fields.Decimal(as_string=True, allow_nan=False, validate=validate.Range(
        min=0, max=MAX_YUAN, error=f"an amount from 0 to {MAX_YUAN} yuan"), **kwargs)


def json_safe(value):
    """Loaded data as plain JSON values (Decimal -> str), fit for JSON columns/events."""
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, Decimal):
        return str(value)
    return value


@functools.cache
def schema_instance(cls):
    """One instance per schema class: building a schema (and its nested ones) costs
    more than a load; loading keeps no state on the instance."""
    return cls()


def check_document_kinds(documents, known, what: str = "document") -> None:
    """Each document's ``kind`` is one of ``known`` (the procedure's list); otherwise
    InvalidInput naming each bad document by its index."""
    from shared.errors import InvalidInput
    bad = {i: [f"unknown {what} kind {d['kind']!r}; one of: {', '.join(known)}"]
           for i, d in enumerate(documents or []) if d["kind"] not in known}
    if bad:
        raise InvalidInput(f"unknown {what} kind", {"documents": bad})


def load_payload(schemas: dict, command: str, payload) -> dict:
    """Load a command's payload with its schema as plain JSON values; InvalidInput names
    the unknown command or each bad field."""
    from shared.boundaries import check_json
    from shared.errors import InvalidInput, nul_free
    if command not in schemas:
        raise InvalidInput(f"unknown command {command!r}",
                           {"command": [f"one of: {', '.join(sorted(schemas))}"]})
    if not isinstance(payload, dict):
        raise InvalidInput("payload must be an object", {"payload": ["must be an object"]})
    nul_free(payload)
    check_json(payload)
    try:
        return json_safe(schema_instance(schemas[command]).load(payload))
    except ValidationError as exc:
        raise InvalidInput(f"invalid {command} payload", exc.messages) from None
