"""``liandong calendar``: which holiday calendar each year uses, the check of an
official notice file, and recomputing open deadlines once one is added.

    liandong calendar                 this year and next: source, holidays, warning
    liandong calendar 2027            one year: source, holiday rest days, adjusted working days
    liandong calendar check 2027      check contracts/calendar/2027.yaml (or check FILE)
    liandong calendar apply 2027      every handoff service recomputes its open deadlines

See contracts/calendar/README.md for the file format and the steps when a notice is
published.
"""
from __future__ import annotations

import argparse
import json
import sys
from datetime import date, timedelta
from pathlib import Path

from shared import calendar as cal

NOT_HANDOFF_SERVICES = ("tracker", "gateway")   # every other service keeps handoffs


def _year(text: str) -> int:
    try:
        year = int(text)
    except ValueError:
        raise SystemExit(f"liandong calendar: {text!r} is not a year (e.g. 2027)") from None
    if not 2000 <= year <= 2100:
        raise SystemExit(f"liandong calendar: {year} is outside 2000..2100")
    return year


def holiday_blocks(yc: cal.YearCalendar) -> list[dict]:
    """Runs of consecutive rest days that contain a holiday (a weekday rest day or a
    statutory holiday), with the statutory holidays' names."""
    statutory = cal.statutory_holidays(yc.year)
    rest = yc.rest_days()
    blocks: list[list[date]] = []
    for d in rest:
        if blocks and blocks[-1][-1] + timedelta(days=1) == d:
            blocks[-1].append(d)
        else:
            blocks.append([d])
    out = []
    for b in blocks:
        if not any(d.weekday() < 5 or d in statutory for d in b):
            continue   # an ordinary weekend
        names = sorted({statutory[d] for d in b if d in statutory})
        out.append({"first": b[0].isoformat(), "last": b[-1].isoformat(), "days": len(b),
                    "statutory": names})
    return out


def describe(year: int) -> dict:
    yc = cal.year_calendar(year)
    return {**yc.describe(), "rest_days": len(yc.rest_days()), "holidays": holiday_blocks(yc)}


def _print_year(info: dict, detail: bool) -> None:
    note = f" — {info['note']}" if info["note"] else ""
    print(f"{info['year']}  {info['source']:16s} {info['reference']}{note}")
    if not detail:
        return
    for h in info["holidays"]:
        names = f"  ({', '.join(h['statutory'])})" if h["statutory"] else ""
        span = h["first"] if h["days"] == 1 else f"{h['first']} .. {h['last']}"
        print(f"  rest {span:24s} {h['days']} day(s){names}")
    worked = ", ".join(info["adjusted_working_days"]) or "none known"
    print(f"  adjusted working days: {worked}")
    print(f"  {info['rest_days']} rest days in {info['year']}")


def cmd_show(args) -> int:
    years = [_year(args.target)] if args.target else None
    status = cal.status()
    infos = [describe(y) for y in (years or [y["year"] for y in status["years"]])]
    if args.json:
        print(json.dumps({"years": infos, "warning": None if years else status["warning"]},
                         ensure_ascii=False, indent=2))
        return 0
    for info in infos:
        _print_year(info, detail=True)
    if not years and status["warning"]:
        print(f"WARNING: {status['warning']}", file=sys.stderr)
    return 0


def cmd_check(args) -> int:
    if not args.target:
        raise SystemExit("liandong calendar check: name a YEAR or a FILE")
    path = Path(args.target)
    if not (path.suffix in (".yaml", ".yml") or path.exists()):
        path = cal.calendar_dir() / f"{_year(args.target)}.yaml"
        if not path.exists():
            print(f"no notice file {path}: {args.target} uses "
                  f"{cal.year_calendar(int(args.target)).source}", file=sys.stderr)
            return 1
    try:
        yc = cal.read_notice(path)
    except cal.CalendarFileError as exc:
        print(f"{path}: NOT usable ({len(exc.problems)} problem(s))", file=sys.stderr)
        for problem in exc.problems:
            print(f"  - {problem}", file=sys.stderr)
        return 1
    info = {**yc.describe(), "rest_days": len(yc.rest_days()), "holidays": holiday_blocks(yc)}
    if args.json:
        print(json.dumps({"file": str(path), "ok": True, **info}, ensure_ascii=False,
                         indent=2))
        return 0
    print(f"{path}: OK — every statutory holiday is a rest day, adjusted working days "
          "are weekend days")
    _print_year(info, detail=True)
    return 0


def cmd_apply(args) -> int:
    from shared import cli
    year = _year(args.target) if args.target else None
    if year is not None:
        yc = cal.year_calendar(year)
        if not yc.official:
            print(f"warning: {year} has no official arrangement here "
                  f"({cal.calendar_dir() / f'{year}.yaml'} missing or invalid); the "
                  f"services will use what they have", file=sys.stderr)
        reason = f"holiday calendar {year} now from {yc.source} {yc.reference}"
    else:
        reason = "the holiday calendar in force changed"
    token = cli._operator_token(args)
    total = 0
    results = []
    from nameko.standalone.rpc import ClusterRpcProxy

    from shared.deadletters import amqp_uri
    # every open handoff is looked at: more time than an ordinary call (a retry after a
    # timeout is harmless: deadlines already recomputed do not move again)
    with ClusterRpcProxy({"AMQP_URI": amqp_uri()}, timeout=args.timeout) as rpc:
        for name in [s for s in cli.SERVICES if s not in NOT_HANDOFF_SERVICES]:
            result = cli._call(getattr(rpc, name).recompute_deadlines, token, reason)
            results.append(result)
            total += len(result["moved"])
            if not args.json:
                print(f"{name:16s} {result['checked']} handoff(s) with running deadlines, "
                      f"{len(result['moved'])} moved")
                for m in result["moved"]:
                    for c in m["changes"]:
                        print(f"  {m['case_number']:22s} {c['deadline_id']:24s} "
                              f"{c['previous_due']} -> {c['due']}")
    if args.json:
        print(json.dumps(results, ensure_ascii=False, indent=2))
    else:
        print(f"{total} deadline change(s) recorded ({reason})")
    return 0


ACTIONS = {"check": cmd_check, "apply": cmd_apply}


def _quiet_logs() -> None:
    """The calendar's own log lines say what the output says: keep only errors (an
    unusable notice file), on stderr, so stdout stays the answer (and valid --json)."""
    import logging

    import structlog
    structlog.configure(
        wrapper_class=structlog.make_filtering_bound_logger(logging.ERROR),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr))


def cmd_calendar(args) -> int:
    _quiet_logs()
    if args.action and args.action not in ACTIONS:
        if args.target:   # `calendar 2027 extra`
            raise SystemExit(f"liandong calendar: unknown action {args.action!r} "
                             f"(one of: YEAR, check, apply)")
        args.target = args.action
        return cmd_show(args)
    return ACTIONS[args.action](args) if args.action else cmd_show(args)


def add_parser(sub) -> None:
    """``liandong calendar ...`` on the CLI's subparsers."""
    p = sub.add_parser(
        "calendar", help="holiday calendar per year; check a notice file; recompute deadlines",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("action", nargs="?", metavar="YEAR|check|apply",
                   help="a year to show, 'check' (a notice file) or 'apply' (recompute "
                        "open deadlines); nothing: this year and next")
    p.add_argument("target", nargs="?", metavar="YEAR|FILE",
                   help="check: a year (contracts/calendar/YEAR.yaml) or a file; "
                        "apply: the year whose notice was added (for the steps' reason)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--timeout", type=float, default=600.0, metavar="SECONDS",
                   help="apply: how long each service may take (default 600; running it "
                        "again is harmless)")
    p.set_defaults(fn=cmd_calendar)
