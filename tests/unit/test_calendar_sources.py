"""The layered calendar (issue 19): notice file > chinese-calendar > holidays package
(provisional), the check of a notice file, the warning from 1 November, the test clock."""
from __future__ import annotations

import shutil
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
import yaml
from structlog.testing import capture_logs

from shared import calendar as cal
from shared.calendar import TZ, deadline

ROOT = Path(__file__).resolve().parents[2]
FIXTURE_2027 = ROOT / "tests" / "calendar" / "2027.yaml"


def end_of(y: int, m: int, d: int) -> datetime:
    return datetime(y, m, d, 23, 59, 59, tzinfo=TZ).astimezone(UTC)


@pytest.fixture(autouse=True)
def fresh_calendar():
    cal.clear_caches()
    yield
    cal.clear_caches()


def publish_notices(folder, monkeypatch):
    """The shipped notices plus the fictitious 2027 one in ``folder``, made the
    LIANDONG_CALENDAR_DIR."""
    for f in cal.DEFAULT_CALENDAR_DIR.glob("*.yaml"):
        shutil.copy(f, folder)
    shutil.copy(FIXTURE_2027, folder)
    monkeypatch.setenv("LIANDONG_CALENDAR_DIR", str(folder))
    cal.clear_caches()
    return folder


@pytest.fixture
def notice_dir(tmp_path, monkeypatch):
    return publish_notices(tmp_path, monkeypatch)


def test_sources_per_year() -> None:
    assert cal.year_calendar(2025).source == "chinese-calendar"
    assert cal.year_calendar(2026).source == "notice"
    assert cal.year_calendar(2026).reference == "国办发明电〔2025〕7号"
    assert cal.year_calendar(2027).source == "provisional"
    assert not cal.year_calendar(2027).official


def test_2026_notice_file_agrees_with_chinese_calendar_every_day() -> None:
    package = cal._package_year(2026)
    notice = cal.year_calendar(2026)
    assert package is not None and notice.source == "notice"
    assert notice.rest_days() == package.rest_days()
    assert notice.work == package.work


def test_spring_festival_2027_provisional_ends_on_first_working_day_after() -> None:
    # Spring Festival eve 2027 is Fri 02-05; statutory rest 02-05..02-08 (eve and the
    # first three days), make-up days (补假) Tue 02-09 and Wed 02-10 for the weekend.
    assert not any(cal.is_working_day(date(2027, 2, d)) for d in range(5, 11))
    assert cal.is_working_day(date(2027, 2, 11))
    # Start on the eve (Fri 02-05): last day Mon 02-08 is a holiday -> Thu 02-11.
    assert deadline(datetime(2027, 2, 5, 10, tzinfo=TZ), "3d") == end_of(2027, 2, 11)
    # Start the day before the eve (Thu 02-04): last day Sun 02-07 -> Thu 02-11.
    assert deadline(datetime(2027, 2, 4, 10, tzinfo=TZ), "3d") == end_of(2027, 2, 11)
    # Weekends-only (before issue 19) would have ended it on Mon 02-08.


def test_provisional_year_is_logged_once_with_its_source() -> None:
    with capture_logs() as logs:
        deadline(datetime(2027, 1, 6, 10, tzinfo=TZ), "3d")
        deadline(datetime(2027, 3, 6, 10, tzinfo=TZ), "3d")
    warnings = [e for e in logs if e["event"] == "holiday_calendar_provisional_year"]
    assert len(warnings) == 1
    assert warnings[0]["year"] == 2027 and warnings[0]["source"] == "provisional"
    assert "adjusted working days unknown" in warnings[0]["note"]


def test_notice_file_overrides_the_packages(notice_dir) -> None:
    c = cal.year_calendar(2027)
    assert (c.source, c.reference) == ("notice", "国办发明电〔2026〕TEST号")
    # the fictitious notice rests 02-05..02-12 and works Saturday 02-20
    assert not cal.is_working_day(date(2027, 2, 11))
    assert cal.is_working_day(date(2027, 2, 20))
    assert deadline(datetime(2027, 2, 5, 10, tzinfo=TZ), "3d") == end_of(2027, 2, 15)
    # an adjusted working Saturday is a working day: Wed 02-17 + 3d = Sat 02-20
    assert deadline(datetime(2027, 2, 17, 10, tzinfo=TZ), "3d") == end_of(2027, 2, 20)
    assert deadline(datetime(2027, 2, 19, 10, tzinfo=TZ), "1wd") == end_of(2027, 2, 20)


def test_every_shipped_notice_file_passes_the_check() -> None:
    files = sorted(cal.DEFAULT_CALENDAR_DIR.glob("*.yaml"))
    assert files
    for f in files + [FIXTURE_2027]:
        assert cal.read_notice(f).source == "notice"


def _bad(**changes) -> dict:
    doc = yaml.safe_load(FIXTURE_2027.read_text(encoding="utf-8"))
    doc.update(changes)
    return doc


@pytest.mark.parametrize(("doc", "expected"), [
    ("just text", "expected a mapping"),
    (_bad(year="2027x"), "is not a year"),
    (_bad(notice=""), "notice's number is missing"),
    (_bad(holidays=[]), "expected a list of holidays"),
    # Spring Festival eve not a rest day
    (_bad(holidays=[{"name": "春节", "rest": ["2027-02-06", "2027-02-12"]}]),
     "statutory holiday 2027-02-05 (Chinese New Year's Eve) is not a rest day"),
    # an adjusted working day on a Wednesday
    (_bad(holidays=yaml.safe_load(FIXTURE_2027.read_text())["holidays"]
          + [{"name": "x", "rest": ["2027-12-30", "2027-12-30"], "work": ["2027-12-29"]}]),
     "adjusted working day 2027-12-29 is a Wednesday, not a weekend day"),
    (_bad(holidays=[{"name": "元旦", "rest": ["2027-01-03", "2027-01-01"]}]),
     "rest ends (2027-01-01) before it starts (2027-01-03)"),
    (_bad(holidays=[{"name": "元旦", "rest": ["2028-01-01", "2028-01-01"]}]),
     "2028-01-01 is not in 2027"),
    (_bad(holidays=[{"name": "元旦", "rest": ["2027-01-01", "not a date"]}]),
     "'not a date' is not a date"),
])
def test_check_rejects_a_bad_notice_with_a_clear_reason(doc, expected) -> None:
    found, problems = cal.parse_notice(doc)
    assert found is None
    assert any(expected in p for p in problems), problems


def test_invalid_notice_file_is_not_used_and_logged(tmp_path, monkeypatch) -> None:
    (tmp_path / "2027.yaml").write_text("year: 2027\nnotice: x\nholidays: [{name: a, "
                                        "rest: [2027-01-01, 2027-01-01]}]\n")
    monkeypatch.setenv("LIANDONG_CALENDAR_DIR", str(tmp_path))
    cal.clear_caches()
    with capture_logs() as logs:
        assert cal.year_calendar(2027).source == "provisional"
    errors = [e for e in logs if e["event"] == "calendar_notice_invalid"]
    assert errors and any("Spring Festival" in p or "Eve" in p for p in errors[0]["problems"])


def test_file_named_for_another_year_is_refused(tmp_path) -> None:
    wrong = tmp_path / "2028.yaml"
    shutil.copy(FIXTURE_2027, wrong)
    with pytest.raises(cal.CalendarFileError, match="must be named 2027.yaml"):
        cal.read_notice(wrong)


def test_warning_from_first_november_for_next_year(notice_dir) -> None:
    (notice_dir / "2027.yaml").unlink()
    cal.clear_caches()
    october = cal.status(datetime(2026, 10, 31, 12, tzinfo=TZ))
    assert october["provisional_years"] == [] and october["warning"] is None
    november = cal.status(datetime(2026, 11, 1, 0, 30, tzinfo=TZ))
    assert november["provisional_years"] == [2027]
    assert "2027" in november["warning"]
    assert [y["source"] for y in november["years"]] == ["notice", "provisional"]
    # during 2027 itself, without a notice, the current year is reported
    assert cal.status(datetime(2027, 3, 1, tzinfo=TZ))["provisional_years"] == [2027]


def test_no_warning_once_the_notice_is_there(notice_dir) -> None:
    assert cal.status(datetime(2026, 11, 29, tzinfo=TZ))["provisional_years"] == []


def test_test_clock_only_in_development(monkeypatch) -> None:
    monkeypatch.setenv("LIANDONG_CLOCK", "2027-01-28T09:00:00+08:00")
    monkeypatch.setenv("LIANDONG_ENV", "production")
    cal._clock_offset.cache_clear()
    try:
        assert cal.now().year == datetime.now(UTC).year
        monkeypatch.setenv("LIANDONG_ENV", "development")
        cal._clock_offset.cache_clear()
        assert cal.to_local(cal.now()).date() == date(2027, 1, 28)
    finally:
        monkeypatch.delenv("LIANDONG_CLOCK")
        cal._clock_offset.cache_clear()


def test_a_notice_file_added_while_running_is_picked_up(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("LIANDONG_CALENDAR_DIR", str(tmp_path))
    monkeypatch.setattr(cal, "RECHECK_SECONDS", 0.0)
    cal.clear_caches()
    assert cal.is_working_day(date(2027, 2, 11))            # provisional: a working day
    shutil.copy(FIXTURE_2027, tmp_path)                      # the notice arrives
    assert not cal.is_working_day(date(2027, 2, 11))        # no restart, no cache clear
    assert cal.year_calendar(2027).source == "notice"
