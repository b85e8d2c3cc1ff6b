"""Registry of every event type on the bus and its payload schema.

Built from the procedure standards in ``contracts/standards`` and the command schemas
in ``shared/schemas``; the JSON Schemas in ``contracts/schemas`` are generated from it.
"""
from __future__ import annotations

from functools import lru_cache

from marshmallow import ValidationError

from shared import casefile
from shared.errors import InvalidInput
from shared.revocations import TokenRevokedSchema
from shared.schemas import alerts as alert_tasks
from shared.schemas import command as command_centres
from shared.schemas import criminal_referral, market_referral, supervision_inquiry
from shared.schemas.common import schema_instance
from shared.schemas.handoff import (
    DeadlineAlertSchema,
    DeadlineRecomputedSchema,
    event_schema,
    recompute_event,
)
from shared.standards import load_standard

# procedure kind -> command schemas (one module per kind); each kind has its standard
# in contracts/standards/<kind>.yaml whose creations/transitions name the events.
KINDS = {
    "criminal_referral": criminal_referral.COMMAND_SCHEMAS,
    "market_referral": market_referral.COMMAND_SCHEMAS,
    # the procuratorate's 以罚代刑 inquiry to an agency (services/supervision)
    "supervision_inquiry": supervision_inquiry.COMMAND_SCHEMAS,
    # command centres (services/command): the event details are the validated input plus
    # what the service adds (recipient, due times); escalation is a step of the action
    "joint_action": command_centres.JOINT_ACTION_DETAILS,
    "assistance_request": command_centres.ASSISTANCE_DETAILS,
    # online alerts become tasks (services/alerts): details = input + what the service adds
    "alert_task": alert_tasks.ALERT_TASK_DETAILS,
}

# Step events no procedure emits any more, still readable in recorded history (a rebuild
# of the tracker replays it): type -> details schema.
RETIRED_STEPS: dict[str, type] = {**criminal_referral.RETIRED_DETAILS}

# Events that are not a procedure step (timers, alerts): type -> full payload schema.
EXTRA_EVENTS: dict[str, type] = {
    "deadline.approaching.v1": DeadlineAlertSchema,
    "deadline.breached.v1": DeadlineAlertSchema,
    "token.revoked.v1": TokenRevokedSchema,      # the gateway; shared/revocations.py
}


def _camel(name: str) -> str:
    return "".join(p.capitalize() for p in name.replace(".", "_").split("_"))


@lru_cache(maxsize=1)
def event_schemas() -> dict[str, type]:
    """event type ('criminal_referral.filed.v1') -> marshmallow payload schema class."""
    registry: dict[str, type] = {}
    for kind, commands in KINDS.items():
        standard = load_standard(kind)
        for step in standard.get("creations", []) + standard["transitions"]:
            registry[step["event"]] = event_schema(
                _camel(step["event"].rsplit(".", 1)[0]) + "Event", commands[step["command"]])
        # every kind's running deadlines can be recomputed when the calendar changes
        registry[recompute_event(kind)] = event_schema(
            _camel(kind) + "DeadlineRecomputedEvent", DeadlineRecomputedSchema)
    for event_type, details in RETIRED_STEPS.items():
        registry[event_type] = event_schema(_camel(event_type.rsplit(".", 1)[0]) + "Event",
                                            details)
    for kind in filter(casefile.section, KINDS):   # a file added to the case file
        registry[casefile.event_type(kind)] = event_schema(
            _camel(kind) + "FileAttachedEvent", casefile.FileAttachedSchema)
    registry.update(EXTRA_EVENTS)
    return registry


def validate_payload(event_type: str, data) -> dict:
    """Load ``data`` with its type's schema; raise InvalidInput naming the bad fields."""
    schema_cls = event_schemas().get(event_type)
    if schema_cls is None:
        raise InvalidInput(f"unknown event type {event_type!r}", {"type": ["unknown"]})
    try:
        return schema_instance(schema_cls).load(data)
    except ValidationError as exc:
        raise InvalidInput(f"payload of {event_type} fails its schema",
                           {"data": exc.messages}) from None
