"""Tests for shared.logging: JSON lines with personal data masked."""
from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
import structlog

from shared.logging import configure_logging, get_logger, mask_personal_data

ID = "330302199001011234"
ID_MASKED = "3303************34"
ID_X = "11010519491231002X"
ID_X_MASKED = "1101************2X"
PHONE = "13812345678"
PHONE_MASKED = "138****5678"
PHONE2 = "15987654321"
PHONE2_MASKED = "159****4321"
CREDIT_CODE = "91330300MA2ABCDE1Y"
CREDIT_CODE_MASKED = "9133************1Y"
CLEAR_TEXT = [ID, ID_X, PHONE, PHONE2, CREDIT_CODE, "张三丰", "三丰", "李四光", "四光",
              "州市某某运输有限公司", "王五"]


@pytest.fixture
def stream() -> Iterator[io.StringIO]:
    """A fresh stream; structlog and the root logger are restored afterwards."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    buf = io.StringIO()
    try:
        yield buf
    finally:
        structlog.reset_defaults()
        structlog.contextvars.clear_contextvars()
        root.handlers[:] = handlers
        root.setLevel(level)


def lines(buf: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in buf.getvalue().splitlines() if line.strip()]


def assert_no_clear_text(raw: str) -> None:
    for secret in CLEAR_TEXT:
        assert secret not in raw, f"clear text {secret!r} leaked: {raw}"


def test_event_with_nested_parties_is_masked(stream: io.StringIO) -> None:
    configure_logging("case-service", level="INFO", stream=stream)
    log = get_logger(case_id="C-2026-001")
    log.info(
        f"referral received for {ID} (call {PHONE})",
        parties=[
            {"name": "张三丰", "id_number": ID, "phone": PHONE, "role": "driver"},
            {"party_name": "温州市某某运输有限公司", "credit_code": CREDIT_CODE,
             "legal_representative": "李四光",
             "contact": {"contact_name": "王五", "mobile": PHONE2}},
        ],
        notes=["witness reachable at " + PHONE2, ("id on file", ID_X)],
        count=2,
    )
    raw = stream.getvalue()
    assert raw.count("\n") == 1, "exactly one JSON object per line"
    assert_no_clear_text(raw)

    (entry,) = lines(stream)
    assert entry["service"] == "case-service"
    assert entry["level"] == "info"
    assert entry["case_id"] == "C-2026-001"
    assert entry["count"] == 2
    assert datetime.fromisoformat(entry["timestamp"]).utcoffset().total_seconds() == 0
    assert entry["timestamp"].endswith("Z")
    assert entry["event"] == f"referral received for {ID_MASKED} (call {PHONE_MASKED})"

    driver, company = entry["parties"]
    assert driver == {"name": "张**", "id_number": ID_MASKED, "phone": PHONE_MASKED,
                      "role": "driver"}
    assert company["party_name"] == "温**********"
    assert company["credit_code"] == CREDIT_CODE_MASKED
    assert company["legal_representative"] == "李**"
    assert company["contact"] == {"contact_name": "王*", "mobile": PHONE2_MASKED}
    assert entry["notes"] == ["witness reachable at " + PHONE2_MASKED, ["id on file", ID_X_MASKED]]
    assert "张三丰" not in raw and "\\u" not in raw  # rendered with ensure_ascii=False


def test_exception_text_is_masked(stream: io.StringIO) -> None:
    configure_logging("case-service", stream=stream)
    log = get_logger()
    try:
        raise ValueError(f"party 张三丰 with id {ID} and phone {PHONE} not found")
    except ValueError:
        log.exception("lookup_failed", party={"name": "张三丰"})
    raw = stream.getvalue()
    (entry,) = lines(stream)
    assert entry["level"] == "error"
    assert entry["event"] == "lookup_failed"
    assert "Traceback" in entry["exception"]
    assert f"with id {ID_MASKED} and phone {PHONE_MASKED}" in entry["exception"]
    assert entry["party"] == {"name": "张**"}
    for secret in (ID, PHONE):
        assert secret not in raw
    assert "exc_info" not in entry


def test_bound_and_context_vars_are_included(stream: io.StringIO) -> None:
    configure_logging("notify-service", stream=stream)
    structlog.contextvars.bind_contextvars(request_id="r-1", phone=PHONE)
    get_logger(unit="温州运管").bind(driver_name="赵六").warning("sms_sent")
    (entry,) = lines(stream)
    assert entry["request_id"] == "r-1"
    assert entry["phone"] == PHONE_MASKED
    assert entry["unit"] == "温州运管"
    assert entry["driver_name"] == "赵*"
    assert entry["service"] == "notify-service"
    assert entry["level"] == "warning"


def test_level_filtering(stream: io.StringIO, monkeypatch: pytest.MonkeyPatch) -> None:
    configure_logging("svc", level="warning", stream=stream)
    log = get_logger()
    log.debug("dropped_debug")
    log.info("dropped_info")
    log.warning("kept")
    assert [e["event"] for e in lines(stream)] == ["kept"]

    monkeypatch.setenv("LOG_LEVEL", "DEBUG")
    second = io.StringIO()
    configure_logging("svc", stream=second)
    get_logger().debug("now_kept")
    assert [e["event"] for e in lines(second)] == ["now_kept"]

    with pytest.raises(ValueError, match="unknown log level"):
        configure_logging("svc", level="chatty", stream=stream)


def test_stdlib_logging_routed_at_warning_and_masked(stream: io.StringIO) -> None:
    configure_logging("gateway", stream=stream)
    kombu = logging.getLogger("kombu.connection")
    kombu.info("connected, not shown")
    kombu.warning("retrying for %s", PHONE)
    try:
        raise RuntimeError(f"broker refused {ID}")
    except RuntimeError:
        logging.getLogger("nameko").exception("worker crashed")
    raw = stream.getvalue()
    assert ID not in raw and PHONE not in raw
    warning, error = lines(stream)
    assert warning["event"] == f"retrying for {PHONE_MASKED}"
    assert warning["level"] == "warning"
    assert warning["logger"] == "kombu.connection"
    assert warning["service"] == "gateway"
    assert "timestamp" in warning
    assert error["level"] == "error"
    assert ID_MASKED in error["exception"]


def test_configure_twice_is_safe(stream: io.StringIO) -> None:
    first = io.StringIO()
    configure_logging("svc", stream=first)
    configure_logging("svc", stream=stream)
    get_logger().info("hello")
    logging.getLogger("kombu").warning("careful")
    assert first.getvalue() == ""
    assert [e["event"] for e in lines(stream)] == ["hello", "careful"]


def test_module_level_logger_follows_later_configuration(stream: io.StringIO) -> None:
    log = get_logger(component="early")  # e.g. created at import time
    configure_logging("svc", stream=stream)
    log.info("late", mobile=PHONE)
    (entry,) = lines(stream)
    assert entry["component"] == "early"
    assert entry["mobile"] == PHONE_MASKED


# --- mask_personal_data as a plain function --------------------------------------------

def test_mask_personal_data_rules() -> None:
    event = {
        "event": f"ids {ID} {ID_X.lower()} phones {PHONE},{PHONE2}",
        "ID_Number": ID,
        "id_no": ID_X,
        "identity_number": int(ID),
        "Telephone": int(PHONE),
        "contact_phone": {"office": "0577-88123456", "cell": PHONE2},
        "legal_representative": ["张三丰", ("李四光",)],
        "mobile": None,
        "full_name": "欧阳娜娜",
        "Name": "张",
        "driver_name": 42,
        "phone": [PHONE, PHONE2],
        "other": {"nested": [{"name": "李四光"}], "n": 7, "ok": True, "none": None},
        "reporter": int(PHONE),
        "error": ValueError(f"no party {ID}"),
        "when": datetime(2026, 2, 24),
    }
    masked = mask_personal_data(None, "info", event)
    assert masked["event"] == (
        f"ids {ID_MASKED} {ID_X_MASKED.lower()} phones {PHONE_MASKED},{PHONE2_MASKED}")
    assert masked["ID_Number"] == ID_MASKED
    assert masked["id_no"] == ID_X_MASKED
    assert masked["identity_number"] == ID_MASKED
    assert masked["Telephone"] == PHONE_MASKED
    assert masked["contact_phone"] == {"office": "057******3456", "cell": PHONE2_MASKED}
    assert masked["legal_representative"] == ["张**", ("李**",)]
    assert masked["mobile"] is None
    assert masked["full_name"] == "欧***"
    assert masked["Name"] == "*"
    assert masked["driver_name"] == "4*"
    assert masked["phone"] == [PHONE_MASKED, PHONE2_MASKED]
    assert masked["other"] == {"nested": [{"name": "李**"}], "n": 7, "ok": True, "none": None}
    assert masked["reporter"] == PHONE_MASKED
    assert masked["error"] == f"ValueError('no party {ID_MASKED}')"
    assert masked["when"] is event["when"]
    # The input is not modified.
    assert event["ID_Number"] == ID
    assert event["other"]["nested"][0]["name"] == "李四光"


@pytest.mark.parametrize(
    "text",
    [
        "order 1234567890123456789 (19 digits)",   # not an 18-character ID
        "ticket 3303021990010112 (16 digits)",
        "landline 0577-88123456",
        "number 013812345678 and 138123456789",     # 12 digits, not a mobile
        "code 12812345678",                          # 12x is not a mobile prefix
    ],
)
def test_free_text_without_personal_numbers_is_untouched(text: str) -> None:
    assert mask_personal_data(None, "info", {"event": text}) == {"event": text}


def test_short_values_under_personal_keys_are_fully_masked() -> None:
    masked = mask_personal_data(None, "info", {"id_number": "123456", "phone": "110"})
    assert masked == {"id_number": "******", "phone": "***"}


def test_self_referencing_values_do_not_recurse_forever() -> None:
    loop: list[Any] = [PHONE]
    loop.append(loop)
    masked = mask_personal_data(None, "info", {"event": "loop", "data": loop})
    assert PHONE not in json.dumps(masked, default=repr)
    assert masked["data"][0] == PHONE_MASKED
