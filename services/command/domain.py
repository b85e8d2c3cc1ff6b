"""The command service's two procedures behind one ``HandoffDomain`` (shared/handoffs.py):
joint actions (联合行动, ``joint_action``) and assistance requests (协查请求,
``assistance_request``). A record's ``kind`` picks its module; the creation command
picks it for a new one. Plain Python."""
from __future__ import annotations

from datetime import datetime

from services.command import assistance, joint_action
from shared.auth import Actor
from shared.errors import InvalidInput
from shared.procedure import Procedure

KIND = "command-centre record"
MODULES = {joint_action.KIND: joint_action, assistance.KIND: assistance}
CREATIONS = {command: module for module in MODULES.values()
             for command in module.procedure().creations}


def module(kind: str):
    if kind not in MODULES:
        raise InvalidInput(f"unknown kind {kind!r}", {"kind": [f"one of: {', '.join(MODULES)}"]})
    return MODULES[kind]


def procedure(kind: str = joint_action.KIND) -> Procedure:
    return module(kind).procedure()


def create(command: str, actor: Actor, payload, now: datetime) -> tuple[dict, dict]:
    if command not in CREATIONS:
        raise InvalidInput(f"{command!r} creates nothing here",
                           {"command": [f"one of: {', '.join(CREATIONS)}"]})
    return CREATIONS[command].create(command, actor, payload, now)


def act(rec: dict, command: str, actor: Actor, payload, now: datetime) -> tuple[dict, dict]:
    return module(rec["kind"]).act(rec, command, actor, payload, now)


def can_view(actor: Actor, rec: dict) -> bool:
    return module(rec["kind"]).can_view(actor, rec)


def event_payload(rec: dict, step: dict) -> dict:
    return module(rec["kind"]).event_payload(rec, step)
