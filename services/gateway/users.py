"""The user directory of the gateway: who may sign in, with which role and unit.

A YAML file (``LIANDONG_USERS``, default ``deploy/users.demo.yaml``) of users with
PBKDF2-SHA256 password hashes. ``python -m services.gateway.users hash`` prints a hash.
"""
from __future__ import annotations

import argparse
import base64
import getpass
import hashlib
import hmac
import os
import secrets
from functools import lru_cache
from pathlib import Path

import yaml

from shared.auth import ROLES, Actor, issue_token
from shared.errors import Unauthenticated

ROOT = Path(__file__).resolve().parent.parent.parent
ITERATIONS = 200_000


def hash_password(password: str, salt: bytes | None = None) -> str:
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, ITERATIONS)
    b64 = base64.b64encode
    return f"pbkdf2_sha256${ITERATIONS}${b64(salt).decode()}${b64(digest).decode()}"


def check_password(password: str, stored: str) -> bool:
    try:
        scheme, iterations, salt, digest = stored.split("$")
    except ValueError:
        return False
    if scheme != "pbkdf2_sha256":
        return False
    computed = hashlib.pbkdf2_hmac("sha256", password.encode(), base64.b64decode(salt),
                                   int(iterations))
    return hmac.compare_digest(computed, base64.b64decode(digest))


@lru_cache(maxsize=4)
def load_users(path: str | None = None) -> dict[str, dict]:
    path = path or os.environ.get("LIANDONG_USERS", str(ROOT / "deploy" / "users.demo.yaml"))
    doc = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    users = {}
    for name, user in (doc.get("users") or {}).items():
        if user.get("role") not in ROLES:
            raise ValueError(f"{path}: user {name!r} has unknown role {user.get('role')!r}")
        users[name] = user
    return users


def login(username: str, password: str) -> dict:
    """A signed token for valid credentials; the same error for any wrong part."""
    if not isinstance(username, str) or not isinstance(password, str):
        raise Unauthenticated("user name and password must be strings",
                              {"username": ["string"], "password": ["string"]})
    user = load_users().get(username)
    if not user or not check_password(password, user["password"]):
        raise Unauthenticated("wrong user name or password",
                              {"password": ["wrong user name or password"]})
    actor = Actor(user_id=username, role=user["role"], unit=user["unit"],
                  county=user.get("county"))
    return {"token": issue_token(actor, issuer="gateway"), **actor.to_dict(),
            "display_name": user.get("display_name", username)}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m services.gateway.users",
                                     description="Print a password hash for the users file.")
    parser.add_argument("action", choices=["hash"])
    parser.parse_args(argv)
    print(hash_password(getpass.getpass("password: ")))


if __name__ == "__main__":
    main()
