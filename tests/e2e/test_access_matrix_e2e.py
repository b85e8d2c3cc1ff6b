"""Who may do what, over HTTP through the running gateway: every role against market
referrals, joint actions and assistance requests — create, read one, list, act, and
the board (tracker) agreeing with read-one. Criminal referrals are covered in
test_gateway_e2e.py::test_each_role_sees_only_what_its_agency_may.

Each resource has one matrix below: a row per actor (one per role of shared/auth.py
ROLES, a second unit or county where the rule is about units or areas, and no token at
all), a column per operation, the expected HTTP status in each cell. Every cell comes
from the rules, cited beside the table:

  market referrals   contracts/standards/market_referral.yaml (roles, directions, sides),
                     services/market_referral/domain.py (can_view, check_may_act)
  joint actions      contracts/standards/joint_action.yaml, services/command/joint_action.py
                     (can_view, _check_dispatch, _recipient_for, close by the dispatcher)
  assistance         contracts/standards/assistance_request.yaml,
                     services/command/assistance.py (can_view, _check_party),
                     contracts/command/centres.yaml (lucheng and ouhai are neighbours,
                     lucheng and taishun are not; taishun and ouhai are not)

The services check visibility before anything else, so an actor who may not see a record
gets 403 for every step on it. A step whose state is wrong answers 409 (checked before
the role, "order first: clearest error"); those cases are in each resource's
``*_WRONG_STATE`` sequence, taken by the right party. Where a step would change the
record, each expected success gets a fresh record and every refusal is tried on one
shared record, which must come out unchanged.
"""
from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import pytest
import requests

from shared.auth import ROLES, SYSTEM, Actor
from tests.conftest import wait_for
from tests.e2e.test_gateway_e2e import Client
from tests.helpers import (
    CITY_COMMAND,
    COORDINATOR,
    COUNTY_COMMAND,
    COURT,
    HEAD,
    MARKET,
    OTHER_COUNTY_COMMAND,
    OTHER_HEAD,
    OTHER_MARKET,
    OTHER_UNIT,
    POLICE,
    POLICE_2,
    PROCURATORATE,
    RESULT,
    UNIT,
    dispatch_payload,
    market_payload,
    market_to_transport_payload,
)

pytestmark = pytest.mark.e2e

TAISHUN_COMMAND = Actor("cc-wu", "county_command", "taishun-command", "taishun")
OPERATOR = Actor("ops-qian", "operator", "wenzhou-ops", None)
PORT_SHIPPING = Actor("port-dt", "port_shipping", "dongtou-port-shipping", "dongtou")
ALERT_SOURCE = Actor("wim-platform", "alert_source", "wim-platform", None)

# row name -> identity (None: no Authorization header)
ACTORS: dict[str, Actor | None] = {
    "city_command": CITY_COMMAND,                 # wenzhou-command
    "county_command": COUNTY_COMMAND,             # lucheng-command
    "county_command@ouhai": OTHER_COUNTY_COMMAND,  # ouhai-command (lucheng's neighbour)
    "county_command@taishun": TAISHUN_COMMAND,    # taishun-command (not a neighbour)
    "enforcement_unit": UNIT,                     # lucheng-team-1
    "enforcement_unit@ouhai": OTHER_UNIT,         # ouhai-team-1
    "agency_head": HEAD,                          # lucheng-bureau
    "agency_head@ruian": OTHER_HEAD,              # ruian-bureau
    "police": POLICE,                             # lucheng-psb
    "police@ouhai": POLICE_2,                     # ouhai-psb
    "procuratorate": PROCURATORATE,               # lucheng-procuratorate
    "court": COURT,                               # lucheng-court (criminal referrals only)
    "market_regulation": MARKET,                  # wenzhou-amr (city level)
    "market_regulation@ruian": OTHER_MARKET,      # ruian-amr
    "port_shipping": PORT_SHIPPING,               # dongtou-port-shipping (港航, issue 17)
    "alert_source": ALERT_SOURCE,                 # wim-platform (a system client, issue 17)
    "coordinator": COORDINATOR,
    "operator": OPERATOR,
    "system": SYSTEM,
    "anonymous": None,
}


def matrix(text: str) -> dict[str, dict[str, int]]:
    """A table as written (header of operations, a row per actor, ``#`` comments) ->
    {operation: {actor: status}}."""
    rows = [line.split("#")[0].split() for line in text.strip().splitlines()]
    rows = [r for r in rows if r]
    header, body = rows[0][1:], rows[1:]
    assert [r[0] for r in body] == list(ACTORS), "one row per actor, in ACTORS order"
    assert all(len(r) == len(header) + 1 for r in body), "one cell per operation"
    return {op: {r[0]: int(r[i + 1]) for r in body} for i, op in enumerate(header)}


# --------------------------------------------------------------------- market referrals
#
# send          create, default command (`send`, transport -> market) of a lucheng
#               referral: roles enforcement_unit, county_command, and only a unit serving
#               lucheng (issue 23: the county comes from the caller's unit; another
#               county's unit gets 403 `county`).
# to_transport  create ?command=send_to_transport of a lucheng referral: role
#               market_regulation, serving lucheng (wenzhou-amr is city-level; ruian-amr
#               serves ruian only: 403).
# read          GET one of a referral lucheng-team-1 sent to wenzhou-amr (and, same
#               column, one wenzhou-amr sent to lucheng-team-1): overseers (city_command,
#               coordinator, operator, system) all; market regulation its own unit's;
#               an enforcement unit its own; county centre and agency head their county's;
#               police, procuratorate and court none. Also the list and the board.
# ack_t2m       acknowledge (side: receiver) of lucheng-team-1 -> wenzhou-amr: only the
#               receiving unit; lucheng-command has a receiver role elsewhere but is
#               neither a market_regulation role here nor the receiver.
# ack_m2t       acknowledge of wenzhou-amr -> lucheng-team-1: only lucheng-team-1; the
#               county centre sees it and has a receiver role but is not the receiving
#               unit; wenzhou-amr is the sender.
# link          link (side: either) on lucheng-team-1 -> wenzhou-amr: sender or receiver
#               unit; lucheng-command has the sender role but is not the sending unit.
MARKET_REFERRAL = matrix("""
actor                    send  to_transport  read  ack_t2m  ack_m2t  link
city_command              403      403        200     403      403    403
county_command            201      403        200     403      403    403
county_command@ouhai      403      403        403     403      403    403
county_command@taishun    403      403        403     403      403    403
enforcement_unit          201      403        200     403      200    200
enforcement_unit@ouhai    403      403        403     403      403    403
agency_head               403      403        200     403      403    403
agency_head@ruian         403      403        403     403      403    403
police                    403      403        403     403      403    403
police@ouhai              403      403        403     403      403    403
procuratorate             403      403        403     403      403    403
court                     403      403        403     403      403    403
market_regulation         403      201        200     200      403    200
market_regulation@ruian   403      403        403     403      403    403
port_shipping             403      403        403     403      403    403
alert_source              403      403        403     403      403    403
coordinator               403      403        200     403      403    403
operator                  403      403        200     403      403    403
system                    403      403        200     403      403    403
anonymous                 401      401        401     401      401    401
""")

ACK = {"receiving_officer": "何科长", "receipt_number": "温市监收-1"}

# The right party, the wrong state (all 409): on one lucheng-team-1 -> wenzhou-amr referral
MARKET_WRONG_STATE = [
    ("market_regulation", "accept", {}, 409),      # accept needs `received`
    ("enforcement_unit", "close", {}, 409),        # close needs result_reported/returned
    ("market_regulation", "acknowledge", ACK, 200),
    ("market_regulation", "acknowledge", ACK, 409),  # acknowledged already
    ("enforcement_unit", "resend", {"response": "r"}, 409),  # resend needs `returned`
]

# --------------------------------------------------------------------- joint actions
#
# dispatch_city    create, payload area [lucheng, ouhai] to lucheng-command,
#                  ouhai-command, wenzhou-amr, lucheng-psb: roles city_command,
#                  county_command; a county centre only inside its own county (the area
#                  names ouhai/lucheng outside it: 403 `area`).
# dispatch_county  area [lucheng] to lucheng-psb, lucheng-amr: the city centre dispatches
#                  anywhere; lucheng's centre inside lucheng; ouhai's and taishun's are
#                  outside their area.
# dispatch_bad     area [lucheng] to ouhai-psb: the city centre may (an agency of any
#                  county); lucheng's centre gets 422 on `recipients` — a county centre
#                  dispatches only to agencies serving its county (InvalidInput, not a
#                  role); the other centres fail the area rule (403) first.
# read_city        the action of dispatch_city: city centre, coordinator, operator, system
#                  all; anyone else only as dispatcher or recipient.
# read_county      the action of dispatch_county (dispatched by lucheng-command).
# ack              acknowledge the city action: each recipient for itself (roles
#                  county_command, police, market_regulation, enforcement_unit); the city
#                  centre, coordinator, operator and system have no such role.
# close_city       close the city action: roles city_command, county_command, and only the
#                  dispatching centre (lucheng-command, a recipient, may not).
# close_county     close lucheng's action: only lucheng-command — not the city centre.
JOINT_ACTION = matrix("""
actor                   dispatch_city dispatch_county dispatch_bad read_city read_county ack close_city close_county
city_command                 201           201            201         200        200     403     200        403
county_command               403           201            422         200        200     200     403        200
county_command@ouhai         403           403            403         200        403     200     403        403
county_command@taishun       403           403            403         403        403     403     403        403
enforcement_unit             403           403            403         403        403     403     403        403
enforcement_unit@ouhai       403           403            403         403        403     403     403        403
agency_head                  403           403            403         403        403     403     403        403
agency_head@ruian            403           403            403         403        403     403     403        403
police                       403           403            403         200        200     200     403        403
police@ouhai                 403           403            403         403        403     403     403        403
procuratorate                403           403            403         403        403     403     403        403
court                        403           403            403         403        403     403     403        403
market_regulation            403           403            403         200        403     200     403        403
market_regulation@ruian      403           403            403         403        403     403     403        403
port_shipping                403           403            403         403        403     403     403        403
alert_source                 403           403            403         403        403     403     403        403
coordinator                  403           403            403         200        200     403     403        403
operator                     403           403            403         200        200     403     403        403
system                       403           403            403         200        200     403     403        403
anonymous                    401           401            401         401        401     401     401        401
""")  # noqa: E501 - one line per actor reads best

CITY_RECIPIENTS = ["lucheng-command", "ouhai-command", "wenzhou-amr", "lucheng-psb"]
COUNTY_AREA = {"area": ["lucheng"], "recipients": ["lucheng-psb", "lucheng-amr"]}

# The right party, the wrong state: on one city action
JOINT_ACTION_WRONG_STATE = [
    ("police", "report_result", RESULT, 409),       # acknowledge before reporting
    ("police", "acknowledge", {}, 200),
    ("police", "acknowledge", {}, 409),             # acknowledged already
    ("city_command", "close", {"reason": "行动提前完成"}, 200),
    ("city_command", "close", {"reason": "again"}, 409),   # closed is final
    ("county_command", "acknowledge", {}, 409),     # too late: closed
]

# --------------------------------------------------------------------- assistance requests
#
# request        create (request_assistance) to_county ouhai: role county_command, for its
#                own centre. ouhai's centre asking itself is 422 on `to_county` (the
#                domain refuses it, not a role rule); taishun's request to ouhai is
#                created too (they are not neighbours: it waits for approval).
# read_near      lucheng -> ouhai (neighbours: straight to ouhai): city centre,
#                coordinator, operator, system all; the requesting centre; the requested
#                centre once the request has reached it; nobody else (no agency head,
#                no other agency).
# read_pending   lucheng -> taishun before the city centre approves: taishun's centre may
#                not see it yet.
# read_approved  the same request after approval: now taishun's centre sees it.
# ack            acknowledge lucheng -> ouhai: only the requested centre.
# approve        approve lucheng -> taishun: only the city centre (role city_command).
# withdraw       withdraw lucheng -> ouhai: only the requesting centre.
ASSISTANCE = matrix("""
actor                   request read_near read_pending read_approved  ack  approve withdraw
city_command              403      200        200          200        403    200     403
county_command            201      200        200          200        403    403     200
county_command@ouhai      422      200        403          403        200    403     403
county_command@taishun    201      403        403          200        403    403     403
enforcement_unit          403      403        403          403        403    403     403
enforcement_unit@ouhai    403      403        403          403        403    403     403
agency_head               403      403        403          403        403    403     403
agency_head@ruian         403      403        403          403        403    403     403
police                    403      403        403          403        403    403     403
police@ouhai              403      403        403          403        403    403     403
procuratorate             403      403        403          403        403    403     403
court                     403      403        403          403        403    403     403
market_regulation         403      403        403          403        403    403     403
market_regulation@ruian   403      403        403          403        403    403     403
port_shipping             403      403        403          403        403    403     403
alert_source              403      403        403          403        403    403     403
coordinator               403      200        200          200        403    403     403
operator                  403      200        200          200        403    403     403
system                    403      200        200          200        403    403     403
anonymous                 401      401        401          401        401    401     401
""")

# The right party, the wrong state: on one lucheng -> ouhai request
ASSISTANCE_WRONG_STATE = [
    ("county_command@ouhai", "answer", {"answer": "已查明"}, 409),  # acknowledge first
    ("city_command", "approve", {}, 409),          # neighbours: nothing to approve
    ("county_command", "withdraw", {"reason": "已自行查明"}, 200),
    ("county_command", "withdraw", {"reason": "again"}, 409),   # withdrawn is final
    ("county_command@ouhai", "acknowledge", {}, 409),
]


def test_every_role_has_a_row():
    assert {a.role for a in ACTORS.values() if a is not None} == set(ROLES)


# --------------------------------------------------------------------- helpers

@pytest.fixture(scope="module")
def web(stack):
    wait_for(lambda: _up(stack.base_url), message="gateway HTTP")
    return stack


def _up(base: str) -> bool:
    try:
        return requests.get(base + "/healthz", timeout=2).status_code == 200
    except requests.RequestException:
        return False


@pytest.fixture(scope="module")
def clients(web) -> dict[str, Client]:
    return {name: Client(web.base_url, actor) for name, actor in ACTORS.items()}


def case_number() -> str:
    return f"MX-{uuid.uuid4().hex[:10]}"


def each(names, call) -> dict[str, int]:
    """``call(name)`` for every name, a few at a time (only for calls that change no
    record the others look at); {name: status}."""
    names = list(names)
    with ThreadPoolExecutor(max_workers=6) as pool:
        return dict(zip(names, pool.map(call, names), strict=True))


def same(got: dict, want: dict, what: str) -> None:
    """``got == want``, naming only the cells that differ: {actor: (want, got)}."""
    diff = {n: (want[n], got.get(n)) for n in want if got.get(n) != want[n]}
    assert not diff and got.keys() == want.keys(), f"{what}: {diff}"


def created(response) -> str:
    assert response.status_code == 201, response.text
    rid = response.json()["id"]
    assert response.headers["Location"].endswith(rid)
    return rid


def read_and_list(clients, collection: str, rid: str, expected: dict[str, int]) -> None:
    """GET one answers as ``expected``; GET the collection lists ``rid`` exactly for the
    actors who may read it."""
    got = each(expected, lambda n: clients[n].get(f"{collection}/{rid}").status_code)
    same(got, expected, f"GET {collection}/<id>")

    def listed(name):
        response = clients[name].get(collection)
        if response.status_code != 200:
            return response.status_code
        return rid in [r["id"] for r in response.json()]
    want = {n: (s == 200 if n != "anonymous" else 401) for n, s in expected.items()}
    same(each(expected, listed), want, f"{rid} in GET {collection}")


def tracked(clients, rid: str, step: int) -> None:
    """Wait until the tracker has applied ``step`` events of ``rid``."""
    coordinator = clients["coordinator"]

    def seen():
        response = coordinator.get(f"/api/v1/handoffs/{rid}")
        return response.status_code == 200 and response.json()["step"] >= step
    wait_for(seen, message=f"tracker at step {step} of {rid}")


def assert_board_agrees(clients, kind: str, column: str, rid: str,
                        expected: dict[str, int]) -> None:
    """The board (``rid`` listed?) and the board's detail (status) agree with read-one,
    for every actor: the tracker shows exactly what the issuing service would."""
    def board(name):
        client = clients[name]
        rows = client.get("/api/v1/handoffs", kind=kind, q=rid, all="true")
        listed = rows.status_code if rows.status_code != 200 else rid in [
            r["handoff_id"] for r in rows.json()]
        return listed, client.get(f"/api/v1/handoffs/{rid}").status_code
    got = each(expected, board)
    want = {n: ((s == 200 if n != "anonymous" else 401), s) for n, s in expected.items()}
    diff = {(kind, column, n): (want[n], got[n]) for n in want if got[n] != want[n]}
    assert not diff, f"board disagrees with read-one: {diff}"


def attempts(clients, table: dict[str, int], fresh, url, body) -> None:
    """Every actor tries one step: those expected to succeed on a fresh record each
    (``fresh()`` -> id), the rest on one shared record, which must not change."""
    shared = fresh()
    before = clients["coordinator"].get(url(shared).rsplit("/", 1)[0]).json()
    got = {}
    for name, want in table.items():
        rid = fresh() if want == 200 else shared
        got[name] = clients[name].post(url(rid), body).status_code
    same(got, table, url("<id>"))
    after = clients["coordinator"].get(url(shared).rsplit("/", 1)[0]).json()
    assert (after["state"], after["step"]) == (before["state"], before["step"])


def in_order(clients, collection: str, rid: str, steps) -> None:
    got = [clients[n].post(f"{collection}/{rid}/{c}", body).status_code
           for n, c, body, _ in steps]
    wrong = [(n, c, want, status) for (n, c, _, want), status in zip(steps, got, strict=True)
             if status != want]
    assert not wrong, f"{collection} (actor, command, expected, got): {wrong}"


# --------------------------------------------------------------------- market referrals

MARKET_REFERRALS = "/api/v1/market-referrals"


def send(clients) -> str:
    return created(clients["enforcement_unit"].post(MARKET_REFERRALS,
                                                    market_payload(case_number())))


def send_to_transport(clients) -> str:
    return created(clients["market_regulation"].post(
        MARKET_REFERRALS, market_to_transport_payload(case_number()),
        command="send_to_transport"))


def test_market_referral_create(clients):
    m = MARKET_REFERRAL
    got = {n: clients[n].post(MARKET_REFERRALS, market_payload(case_number())).status_code
           for n in m["send"]}
    same(got, m["send"], "create (send)")
    got = {n: clients[n].post(MARKET_REFERRALS, market_to_transport_payload(case_number()),
                              command="send_to_transport").status_code
           for n in m["to_transport"]}
    same(got, m["to_transport"], "create (send_to_transport)")
    # reasons other than the role: not a creation command; a kind that travels only
    # transport -> market sent the other way
    market = clients["market_regulation"]
    wrong = market.post(MARKET_REFERRALS, market_to_transport_payload(case_number()),
                        command="acknowledge")
    assert wrong.status_code == 422 and "command" in wrong.json()["errors"]
    kind = market.post(MARKET_REFERRALS, market_payload(case_number(), target_unit=UNIT.unit),
                       command="send_to_transport")
    assert kind.status_code == 422 and "referral_kind" in kind.json()["errors"]


def test_market_referral_read_list_and_board(clients):
    expected = MARKET_REFERRAL["read"]
    for rid in (send(clients), send_to_transport(clients)):
        read_and_list(clients, MARKET_REFERRALS, rid, expected)
        tracked(clients, rid, 1)
        assert_board_agrees(clients, "market_referral", "read", rid, expected)


def test_market_referral_act(clients):
    m = MARKET_REFERRAL

    def url(command):
        return lambda rid: f"{MARKET_REFERRALS}/{rid}/{command}"
    attempts(clients, m["ack_t2m"], lambda: send(clients), url("acknowledge"), ACK)
    attempts(clients, m["ack_m2t"], lambda: send_to_transport(clients), url("acknowledge"),
             ACK)
    link = {"linked": [{"kind": "criminal_referral", "id": str(uuid.uuid4())}]}
    attempts(clients, m["link"], lambda: send(clients), url("link"), link)
    in_order(clients, MARKET_REFERRALS, send(clients), MARKET_WRONG_STATE)


# --------------------------------------------------------------------- joint actions

JOINT_ACTIONS = "/api/v1/joint-actions"
ASSISTANCE_REQUESTS = "/api/v1/assistance-requests"


def city_wide() -> dict:
    return dispatch_payload(datetime.now(UTC), recipients=CITY_RECIPIENTS)


def lucheng_only(**over) -> dict:
    return dispatch_payload(datetime.now(UTC), **{**COUNTY_AREA, **over})


def dispatch(clients, by: str = "city_command", payload=None) -> str:
    return created(clients[by].post(JOINT_ACTIONS, payload or city_wide()))


def test_joint_action_create(clients):
    j = JOINT_ACTION
    for column, payload in (("dispatch_city", city_wide),
                            ("dispatch_county", lucheng_only),
                            ("dispatch_bad", lambda: lucheng_only(recipients=["ouhai-psb"]))):
        got = {n: clients[n].post(JOINT_ACTIONS, payload()).status_code for n in j[column]}
        same(got, j[column], column)
    bad = clients["county_command"].post(JOINT_ACTIONS,
                                         lucheng_only(recipients=["ouhai-psb"]))
    assert "recipients" in bad.json()["errors"]
    # the collection's own creation command only: an assistance creation command is 422
    wrong = clients["county_command"].post(JOINT_ACTIONS, {"to_county": "ouhai",
                                           "subject": "s", "request": "r"},
                                           command="request_assistance")
    assert wrong.status_code == 422 and "command" in wrong.json()["errors"]
    wrong = clients["city_command"].post(ASSISTANCE_REQUESTS, city_wide(), command="dispatch")
    assert wrong.status_code == 422 and "command" in wrong.json()["errors"]
    # authentication comes before the query string
    assert clients["anonymous"].post(JOINT_ACTIONS, city_wide(),
                                     command="request_assistance").status_code == 401


def test_joint_action_read_list_and_board(clients):
    j = JOINT_ACTION
    for column, by, payload in (("read_city", "city_command", city_wide()),
                                ("read_county", "county_command", lucheng_only())):
        rid = dispatch(clients, by, payload)
        read_and_list(clients, JOINT_ACTIONS, rid, j[column])
        tracked(clients, rid, 1)
        assert_board_agrees(clients, "joint_action", column, rid, j[column])


def test_joint_action_act(clients):
    j = JOINT_ACTION

    def url(command):
        return lambda rid: f"{JOINT_ACTIONS}/{rid}/{command}"
    attempts(clients, j["ack"], lambda: dispatch(clients), url("acknowledge"),
             {"note": "收到"})
    close = {"reason": "行动提前完成"}
    attempts(clients, j["close_city"], lambda: dispatch(clients), url("close"), close)
    attempts(clients, j["close_county"],
             lambda: dispatch(clients, "county_command", lucheng_only()), url("close"), close)
    in_order(clients, JOINT_ACTIONS, dispatch(clients), JOINT_ACTION_WRONG_STATE)


# --------------------------------------------------------------------- assistance requests

def request_assistance(clients, to_county: str = "ouhai") -> str:
    return created(clients["county_command"].post(ASSISTANCE_REQUESTS, {
        "to_county": to_county, "subject": "协查浙C·A1234", "request": "请协查该车停放地点",
        "plate": "浙CA1234"}))


def test_assistance_request_create(clients):
    payload = {"to_county": "ouhai", "subject": "协查驾驶员", "request": "请协查驾驶员住址"}
    expected = ASSISTANCE["request"]
    got = {n: clients[n].post(ASSISTANCE_REQUESTS, payload).status_code for n in expected}
    same(got, expected, "create (request_assistance)")
    asks_itself = clients["county_command@ouhai"].post(ASSISTANCE_REQUESTS, payload)
    assert "to_county" in asks_itself.json()["errors"]
    # a record of the other command collection is not found under this one
    rid = request_assistance(clients)
    coordinator = clients["coordinator"]
    assert coordinator.get(f"{JOINT_ACTIONS}/{rid}").status_code == 404
    assert clients["county_command@ouhai"].post(f"{JOINT_ACTIONS}/{rid}/acknowledge",
                                                {}).status_code == 404


def test_assistance_request_read_list_and_board(clients):
    a = ASSISTANCE
    near = request_assistance(clients)
    read_and_list(clients, ASSISTANCE_REQUESTS, near, a["read_near"])
    tracked(clients, near, 1)
    assert_board_agrees(clients, "assistance_request", "read_near", near, a["read_near"])

    far = request_assistance(clients, "taishun")
    read_and_list(clients, ASSISTANCE_REQUESTS, far, a["read_pending"])
    tracked(clients, far, 1)
    assert_board_agrees(clients, "assistance_request", "read_pending", far,
                        a["read_pending"])

    approved = clients["city_command"].post(f"{ASSISTANCE_REQUESTS}/{far}/approve",
                                            {"opinion": "同意"})
    assert approved.status_code == 200 and approved.json()["state"] == "requested"
    read_and_list(clients, ASSISTANCE_REQUESTS, far, a["read_approved"])
    tracked(clients, far, 2)
    assert_board_agrees(clients, "assistance_request", "read_approved", far,
                        a["read_approved"])


def test_assistance_request_act(clients):
    a = ASSISTANCE

    def url(command):
        return lambda rid: f"{ASSISTANCE_REQUESTS}/{rid}/{command}"
    attempts(clients, a["ack"], lambda: request_assistance(clients), url("acknowledge"), {})
    attempts(clients, a["approve"], lambda: request_assistance(clients, "taishun"),
             url("approve"), {"opinion": "同意"})
    attempts(clients, a["withdraw"], lambda: request_assistance(clients), url("withdraw"),
             {"reason": "已自行查明"})
    in_order(clients, ASSISTANCE_REQUESTS, request_assistance(clients),
             ASSISTANCE_WRONG_STATE)
