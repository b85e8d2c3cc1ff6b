"""``liandong penalties``: 以罚代刑 supervision from a terminal (import, status, list,
show, stats). Registered by shared/cli.py; signs tokens the same way (``--as``)."""
from __future__ import annotations

import base64
import sys
from pathlib import Path

IMPORT_TIMEOUT = 600   # seconds an import RPC may take (100,000 rows)


def cmd_penalties(args) -> int:
    from nameko.standalone.rpc import ClusterRpcProxy

    from shared import cli
    from shared.deadletters import amqp_uri
    token = cli._token(args)
    timeout = IMPORT_TIMEOUT if args.action == "import" else 60
    with ClusterRpcProxy({"AMQP_URI": amqp_uri()}, timeout=timeout) as rpc:
        svc = rpc.supervision
        if args.action == "import":
            path = Path(args.file)
            try:
                content = path.read_bytes()
            except OSError as exc:
                raise SystemExit(f"liandong: cannot read {path}: {exc.strerror}") from None
            print(f"importing {path.name} ({len(content)} bytes) ...", file=sys.stderr)
            report = cli._call(svc.import_file, token, path.name,
                               base64.b64encode(content).decode("ascii"))
            if args.json:
                cli._print(report)
            else:
                _summary(report)
            return 1 if report["rejected"] and args.strict else 0
        if args.action == "status":
            if args.import_id:
                report = cli._call(svc.import_status, token, args.import_id)
                cli._print(report) if args.json else _summary(report)
            else:
                for r in cli._call(svc.imports, token, args.limit):
                    print(f"{r['id']}  {r['at'][:19]}  {r['source']:4s}  "
                          f"rows {r['rows']:6d}  new {r['inserted']:6d}  upd {r['updated']:5d}"
                          f"  same {r['unchanged']:6d}  bad {r['rejected']:5d}  "
                          f"suspect {r['suspects']:5d}  {r['filename'] or ''}")
        elif args.action == "list":
            rows = cli._call(svc.decisions, token, args.show, args.in_county, args.limit, 0)
            if args.json:
                cli._print(rows)
            else:
                for d in rows:
                    mark = "C" if d["candidate"] else ("R" if d["referred_by"] else " ")
                    rules = ",".join(m["rule_id"] for m in d["matches"]) or "-"
                    inquiry = d["inquiries"][-1]["state"] if d["inquiries"] else "-"
                    print(f"{mark} {d['case_number']:28s} {d['decided_on']} {d['county']:9s}"
                          f" {d['unit']:18s} {d.get('plate') or '-':10s} {rules:28s} {inquiry}")
                print(f"{len(rows)} decision(s) (C candidate, R covered by a referral)")
        elif args.action == "show":
            cli._print(cli._call(svc.decision, token, args.case_number))
        elif args.action == "stats":
            cli._print(cli._call(svc.statistics, token))
    return 0


def _summary(r: dict) -> None:
    print(f"import {r['id']}: {r['rows']} row(s): {r['inserted']} new, {r['updated']} "
          f"updated, {r['unchanged']} unchanged, {r['rejected']} rejected; "
          f"{r['suspects']} meet a criminal threshold")
    for e in r["errors"]:
        print(f"  line {e['line']}: {e['field']}: {e['reason']}")
    total = r.get("errors_total", len(r["errors"]))
    if total > len(r["errors"]):
        print(f"  ... {total - len(r['errors'])} more error(s)")


def add_parser(sub, identity) -> None:
    p = sub.add_parser(
        "penalties", help="以罚代刑 supervision: import penalty decisions, list candidates",
        description="Administrative penalty decisions for the procuratorate's 以罚代刑 "
                    "supervision. The file layout is contracts/supervision/README.md.")
    psub = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    r = psub.add_parser("import", help="import a CSV or XLSX file of penalty decisions",
                        description="Good rows are imported in one transaction, bad rows "
                                    "reported as line: field: reason. Importing the same "
                                    "file again changes nothing.")
    identity(r)
    r.add_argument("file", help="a .csv (UTF-8 or GB18030) or .xlsx file")
    r.add_argument("--json", action="store_true", help="print the report as JSON")
    r.add_argument("--strict", action="store_true", help="exit 1 when any row was rejected")
    r = psub.add_parser("status", help="the latest imports, or one import with its errors")
    identity(r)
    r.add_argument("import_id", nargs="?")
    r.add_argument("--limit", type=int, default=20)
    r.add_argument("--json", action="store_true")
    r = psub.add_parser("list", help="candidates (default), suspects or all decisions")
    identity(r)
    r.add_argument("--show", default="candidates", choices=["candidates", "suspects", "all"])
    r.add_argument("--in-county", dest="in_county")
    r.add_argument("--limit", type=int, default=200)
    r.add_argument("--json", action="store_true")
    r = psub.add_parser("show", help="one decision: rules met, referrals, inquiries")
    identity(r)
    r.add_argument("case_number")
    r = psub.add_parser("stats", help="decisions, matches, candidates, inquiries, transfers")
    identity(r)
    for parser in (p, *psub.choices.values()):
        parser.set_defaults(fn=cmd_penalties)
