"""``liandong users ...`` and ``liandong audit --security``: the gateway's users,
sessions and security audit, from an operator's terminal.

They work on the gateway's database directly (``GATEWAY_DATABASE_URL`` or the
``DATABASE_URL`` template, as the gateway), so they work while the gateway is down; a
revocation is committed with its ``token.revoked.v1`` event in the gateway's outbox,
which the running gateway publishes (or ``liandong relay --service gateway --once``).
Every change is recorded in the security audit under the operator's OS user.
"""
from __future__ import annotations

import argparse
import getpass
import json
import os
import sys

USERS_HELP = """Users who may sign in to the gateway (its database; Argon2id passwords).

  add USER --role R --unit U [--county C] [--name N]   password asked twice (or
                                     LIANDONG_NEW_PASSWORD for scripts); policy: 12+
                                     characters, 3 of 4 classes, not the user name
  passwd USER                        new password; the user's tokens are revoked
  disable USER / enable USER         a disabled user cannot sign in; disabling revokes
  revoke USER                        every token of USER issued until now is refused by
                                     every service (sign out everywhere)
  totp USER [--off]                  enrol a TOTP second factor (prints the secret and an
                                     otpauth:// URI once) or remove it
  list                               users, role, unit, disabled, second factor"""


def _by() -> str:
    import socket

    from shared.tokenaudit import os_user
    return f"cli:{os_user()}@{socket.gethostname()}"


def _password(args) -> str:
    given = os.environ.get("LIANDONG_NEW_PASSWORD")
    if given:
        return given
    if not sys.stdin.isatty():
        raise SystemExit("liandong users: no terminal to ask the password on; set "
                         "LIANDONG_NEW_PASSWORD")
    first = getpass.getpass(f"new password for {args.username}: ")
    if getpass.getpass("again: ") != first:
        raise SystemExit("liandong users: the passwords differ")
    return first


def cmd_users(args) -> int:
    from services.gateway import security as sec
    from services.gateway import store as st
    from shared.errors import Rejected
    by = _by()
    try:
        if args.action == "list":
            with st.store.session() as s:
                rows = sec.list_users(s)
            for u in rows:
                flags = " ".join(f for f, on in (("DISABLED", u["disabled"]),
                                                  ("totp", u["totp"]),
                                                  ("development", u["development_only"]))
                                 if on)
                county = f"/{u['county']}" if u["county"] else ""
                print(f"{u['username']:24s} {u['role']:18s} {u['unit']}{county}  {flags}")
            print(f"{len(rows)} user(s)")
            return 0
        password = _password(args) if args.action in ("add", "passwd") else None
        with st.store.transaction() as s:
            if args.action == "add":
                result = sec.add_user(s, args.username, args.role, args.unit, password, by,
                                      args.county, args.name)
            elif args.action == "passwd":
                result = sec.set_password(s, args.username, password, by)
            elif args.action in ("disable", "enable"):
                result = sec.set_disabled(s, args.username, args.action == "disable", by)
            elif args.action == "revoke":
                sec._need(s, args.username)
                result = sec.revoke_user(s, args.username, args.reason, by)
            else:
                result = sec.set_totp(s, args.username, by, off=args.off)
    except Rejected as exc:
        print(json.dumps({"error": exc.to_dict()}, ensure_ascii=False, indent=2))
        return 2
    print(json.dumps(result, ensure_ascii=False, indent=2, default=str))
    if args.action in ("passwd", "disable", "revoke"):
        print("the revocation is in the gateway's outbox: the running gateway publishes it "
              "to every service within a second", file=sys.stderr)
    return 0


def cmd_security_audit(args) -> int:
    """List the security audit (filtered) and verify its whole hash chain."""
    from services.gateway import security as sec
    from services.gateway import store as st
    with st.store.session() as s:
        rows = sec.audit_records(s)
    problems = sec.verify_audit(rows)
    shown = [r for r in rows if (not args.kind or r["kind"].startswith(args.kind))
             and (not args.user or r["username"] == args.user)]
    for r in shown[-args.limit:] if args.limit else shown:
        detail = json.dumps(r["detail"], ensure_ascii=False, sort_keys=True)
        print(f"{r['at']}  {r['kind']:22s} {r['username'] or '-':20s} "
              f"{r['address'] or '-':16s} {detail}")
    print(f"{len(rows)} security record(s), {len(shown)} shown: "
          f"{'BROKEN' if problems else 'chain intact'}")
    for problem in problems:
        print(f"  {problem}")
    return 1 if problems else 0


def add_users_parser(sub) -> None:
    p = sub.add_parser("users", help="gateway users: add, passwd, disable, enable, revoke, "
                                     "totp, list", description=USERS_HELP,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    usub = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    u = usub.add_parser("add", help="add a user (password asked, policy checked)")
    u.add_argument("username")
    u.add_argument("--role", required=True)
    u.add_argument("--unit", required=True)
    u.add_argument("--county")
    u.add_argument("--name", help="display name")
    usub.add_parser("passwd", help="set a new password; revokes the user's tokens") \
        .add_argument("username")
    usub.add_parser("disable", help="refuse the user's sign-ins; revokes their tokens") \
        .add_argument("username")
    usub.add_parser("enable", help="let a disabled user sign in again").add_argument(
        "username")
    u = usub.add_parser("revoke", help="revoke every token of the user issued until now")
    u.add_argument("username")
    u.add_argument("--reason", default="revoked by an operator")
    u = usub.add_parser("totp", help="enrol (or --off remove) a TOTP second factor")
    u.add_argument("username")
    u.add_argument("--off", action="store_true")
    usub.add_parser("list", help="every user")
    for u in usub.choices.values():
        u.set_defaults(fn=cmd_users)
