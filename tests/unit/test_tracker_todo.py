"""Who must act next (the tracker's ``waiting``, the 待办 of each unit): per kind, from
the events alone."""
from __future__ import annotations

from services.tracker import domain
from shared.auth import Actor

POLICE = Actor("p", "police", "lucheng-psb", "lucheng")
HEAD = Actor("h", "agency_head", "lucheng-bureau", "lucheng")
LUCHENG = Actor("c", "county_command", "lucheng-command", "lucheng")
CITY = Actor("x", "city_command", "wenzhou-command", None)


def event(kind, command, state, details=None, deadline=None, **more):
    return {"kind": kind, "command": command, "state": state, "details": details or {},
            "deadline": deadline, "owner_unit": "lucheng-team-1", **more}


def test_criminal_referral_waits_for_the_role_its_deadline_names():
    w = domain.waiting_after(event("criminal_referral", "request_approval",
                                   "approval_requested",
                                   deadline={"actor_role": "agency_head"}), "")
    assert domain.is_mine({"waiting": w}, HEAD) and not domain.is_mine({"waiting": w}, POLICE)
    assert domain.todo_commands({"waiting": w, "kind": "criminal_referral",
                                 "state": "approval_requested"}, HEAD) == ["approve", "refuse"]
    # receipted: the police must decide; the agency's option to go to the procuratorate
    # only opens once they are late, so it is not the agency's work
    w = domain.waiting_after(event("criminal_referral", "sign_receipt", "receipted",
                                   deadline={"actor_role": "police"}), w)
    assert w.split() == ["r:police"]
    assert domain.waiting_after(event("criminal_referral", "record_judgment", "convicted"),
                                w) == ""


def test_joint_action_waits_for_each_recipient_until_it_reported():
    w = domain.waiting_after(event("joint_action", "dispatch", "dispatched", {
        "recipients": ["lucheng-command", "lucheng-psb"]}), "")
    assert domain.todo_commands({"waiting": w}, LUCHENG) == ["acknowledge"]
    w = domain.waiting_after(event("joint_action", "acknowledge", "dispatched",
                                   {"recipient": "lucheng-command"}), w)
    assert domain.todo_commands({"waiting": w}, LUCHENG) == ["report_result"]
    assert domain.todo_commands({"waiting": w}, POLICE) == ["acknowledge"]
    w = domain.waiting_after(event("joint_action", "report_result", "dispatched",
                                   {"recipient": "lucheng-command"}), w)
    assert not domain.is_mine({"waiting": w}, LUCHENG) and domain.is_mine({"waiting": w}, POLICE)
    assert not domain.is_mine({"waiting": w}, CITY)


def test_assistance_request_waits_for_the_city_then_the_requested_centre():
    w = domain.waiting_after(event("assistance_request", "request_assistance",
                                   "approval_pending", {"target_unit": "lucheng-command"},
                                   counterpart_unit="lucheng-command"), "")
    assert domain.is_mine({"waiting": w}, CITY) and not domain.is_mine({"waiting": w}, LUCHENG)
    w = domain.waiting_after(event("assistance_request", "approve", "requested",
                                   counterpart_unit="lucheng-command"), w)
    assert domain.todo_commands({"waiting": w}, LUCHENG) == ["acknowledge"]


def test_market_referral_waits_for_the_receiver_then_the_sender():
    sent = event("market_referral", "send", "sent", counterpart_unit="wenzhou-amr")
    assert domain.waiting_after(sent, "").split() == ["u:wenzhou-amr="]
    back = event("market_referral", "return", "returned", counterpart_unit="wenzhou-amr")
    assert domain.waiting_after(back, "").split() == ["u:lucheng-team-1="]


def test_alert_task_waits_for_its_handling_unit_then_the_centres():
    port = Actor("d", "port_shipping", "dongtou-port-shipping", "dongtou")
    team = Actor("t", "enforcement_unit", "dongtou-team-1", "dongtou")
    dongtou = Actor("c", "county_command", "dongtou-command", "dongtou")
    task = {"owner_unit": "dongtou-command", "counterpart_unit": "dongtou-port-shipping"}
    w = ""
    for command, state, step in (("dispatch", "dispatched", "acknowledge"),
                                 ("acknowledge", "acknowledged", "arrive"),
                                 ("arrive", "on_site", "dispose")):
        # (every deadline of alert_task.yaml names enforcement_unit: the unit decides)
        w = domain.waiting_after(event("alert_task", command, state, **task,
                                       deadline={"actor_role": "enforcement_unit"}), w)
        assert domain.todo_commands({"waiting": w}, port) == [step]
        assert not domain.is_mine({"waiting": w}, team)
        assert not domain.is_mine({"waiting": w}, dongtou)
    w = domain.waiting_after(event("alert_task", "dispose", "disposed", **task), w)
    assert domain.is_mine({"waiting": w}, dongtou) and domain.is_mine({"waiting": w}, CITY)
    assert not domain.is_mine({"waiting": w}, port)
    assert domain.waiting_after(event("alert_task", "close", "closed", **task), w) == ""


def test_observers_chase_what_is_overdue():
    coordinator = Actor("k", "coordinator", "wenzhou-coordination", None)
    assert domain.is_mine({"waiting": "", "overdue": True}, coordinator)
    assert not domain.is_mine({"waiting": " r:coordinator ", "overdue": False}, coordinator)
