"""A demo that shows the product: over a simulated past year, every kind of handoff
(criminal referrals, market referrals both ways, joint actions, assistance requests) in
every county, at every stage, seeded through the running services as real users act.

Steps are backdated (``at``, honoured only with ``LIANDONG_ENV=development``: see
``shared.handoffs.step_time``) with realistic hours between them, so some handoffs are
overdue, some due today, and each demo user (deploy/users.demo.yaml) finds work waiting.
Every create and step carries an idempotency key derived from the scenario, so running
the demo twice adds nothing the second time.
"""
from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from shared import units
from shared.auth import Actor, issue_token
from shared.calendar import to_local
from shared.errors import Rejected
from shared.schemas.common import COUNTIES

COUNTY_LIST = list(COUNTIES)
HOME = ("lucheng", "ouhai")          # the demo users' own counties
VALID_IDS = ["11010519491231002X", "33030219850612031X", "330381199203151223"]
VALID_USCC = "91330300MA2HA1B2C9"
NAMESPACE = uuid.UUID("5d1c1a40-2b7e-4f59-9a55-0c2f7a1d0e14")
DOCUMENTS = [{"kind": k, "title": t} for k, t in (
    ("transfer_letter", "涉嫌犯罪案件移送书"), ("investigation_report", "调查报告"),
    ("items_list", "涉案物品清单"), ("inspection_reports", "检验报告"),
    ("other_materials", "现场笔录"))]
HOUR = 3600.0
# the case file's papers the demo uploads before a transfer (Decree art. 6 (1)-(3))
REQUIRED_FILES = [("transfer_letter", "涉嫌犯罪案件移送书"),
                  ("investigation_report", "涉嫌犯罪案件情况的调查报告"),
                  ("items_list", "涉案物品清单")]

# Criminal referral scenarios: the steps (command, hours after the previous step, lo-hi).
# Open ones end at a stage where someone must act; the last gap decides whether that
# person is on time, due today or late.
MAIN = [("request_approval", 24, 72), ("approve", 4, 40), ("transfer", 2, 20),
        ("sign_receipt", 1, 20), ("file", 20, 66), ("hand_over_evidence", 24, 90),
        ("end_investigation", 600, 1400), ("decide_prosecution", 400, 900),
        ("record_judgment", 700, 2000)]
NOT_FILED = MAIN[:4] + [("not_file", 30, 70), ("request_reconsideration", 10, 60),
                        ("decide_reconsideration", 30, 70)]
SUPERVISED = NOT_FILED + [("request_supervision", 10, 60), ("request_explanation", 24, 120)]
REFUSED = MAIN[:1] + [("refuse", 10, 60)]
RETURNED = MAIN[:6] + [("end_investigation_dropped", 300, 900), ("return_for_penalty", 24, 96)]
# (path, how many steps of it) -> open at a stage with someone to act, or finished
STAGES = [(MAIN, 0), (MAIN, 1), (MAIN, 3), (MAIN, 8), (MAIN, 7), (SUPERVISED, 8),
          (RETURNED, 8), (MAIN, 4), (NOT_FILED, 5), (MAIN, 2), (MAIN, 5), (MAIN, 9),
          (REFUSED, 2), (NOT_FILED, 7), (SUPERVISED, 9), (RETURNED, 7), (MAIN, 6)]
# the first GUARANTEED stages are seeded in each home county whatever the count: a case
# waiting for each role there (officer, head, police, court, procuratorate twice, officer)
GUARANTEED = 7
MIN_REFERRALS = GUARANTEED * len(HOME)


@dataclass
class Seeder:
    rpc: object
    now: datetime
    rng: random.Random
    token: object
    counts: dict = field(default_factory=dict)
    skipped: int = 0

    # ------------------------------------------------------------------ plumbing
    def key(self, *parts) -> str:
        return str(uuid.uuid5(NAMESPACE, "/".join(map(str, parts))))

    def create(self, service, actor: Actor, command: str, payload: dict, at: datetime,
               scenario: str) -> dict | None:
        svc = getattr(self.rpc, service)
        try:
            return svc.create(self.token(actor), command, payload,
                              idempotency_key=self.key(scenario, "create"),
                              at=at.isoformat())
        except Rejected as exc:
            if exc.code != "idempotency_conflict":
                raise
            self.skipped += 1     # seeded by an earlier run (another day): leave it be
            return None

    def act(self, service, actor: Actor, rec: dict, command: str, payload: dict,
            at: datetime, scenario: str) -> dict | None:
        svc = getattr(self.rpc, service)
        at = max(at, datetime.fromisoformat(rec["updated_at"]) + timedelta(minutes=1))
        try:
            return svc.act(self.token(actor), rec["id"], command, payload,
                           idempotency_key=self.key(scenario, rec["step"], command),
                           at=min(at, self.now - timedelta(minutes=1)).isoformat())
        except Rejected as exc:
            if exc.code == "idempotency_conflict":
                self.skipped += 1
                return None
            if exc.code == "invalid_transition":   # a rerun meets a record moved on
                return None
            raise

    def file(self, actor: Actor, rec: dict, kind: str, title: str, at: datetime,
             scenario: str) -> None:
        """Upload a small real paper into a referral's case file as the gateway files an
        upload: the blob into the store the services use (this process's environment,
        as for `make run`), then the step, backdated like the others."""
        from shared import blobstore
        data = tiny_pdf(rec["case_number"], kind)
        key = self.key(scenario, "file", kind)
        document = {"document_id": uuid.UUID(key).hex, "kind": kind, "title": title,
                    "filename": f"{rec['case_number']}-{title}.pdf",
                    "media_type": "application/pdf", "size": len(data)}
        at = max(at, datetime.fromisoformat(rec["updated_at"]) + timedelta(minutes=1))
        blobstore.file_bytes(
            data, lambda sha: self.rpc.police_handoff.attach_file(
                self.token(actor), rec["id"], {**document, "sha256": sha}, key,
                at=min(at, self.now - timedelta(minutes=2)).isoformat()),
            lambda sha: self.rpc.documents.register(self.token(actor), {
                "sha256": sha, "size": len(data), "media_type": "application/pdf"}))

    def count(self, kind: str, state: str) -> None:
        by = self.counts.setdefault(kind, {})
        by[state] = by.get(state, 0) + 1

    def hours(self, lo: float, hi: float) -> timedelta:
        return timedelta(hours=self.rng.uniform(lo, hi))

    def tail(self) -> timedelta:
        """How long ago an open handoff's last step was: a few hours (in time), a day or
        two (due today for a 3-day period), or a week and more (overdue)."""
        return timedelta(hours=self.rng.choice([1, 3, 20, 50, 62, 70, 160, 400]))


def _actors(county: str) -> dict[str, Actor]:
    return {
        "enforcement_unit": Actor(f"officer-{county}", "enforcement_unit", f"{county}-team-1",
                                  county),
        "agency_head": Actor(f"head-{county}", "agency_head", f"{county}-bureau", county),
        "police": Actor(f"police-{county}", "police", f"{county}-psb", county),
        "procuratorate": Actor(f"pro-{county}", "procuratorate", f"{county}-procuratorate",
                               county),
        "court": Actor(f"court-{county}", "court", f"{county}-court", county),
        "county_command": Actor(f"cmd-{county}", "county_command", f"{county}-command",
                                county),
    }


CITY = Actor("cmd-city", "city_command", "wenzhou-command", None)
MARKET = Actor("amr-demo", "market_regulation", "wenzhou-amr", None)


def tiny_pdf(*lines: str) -> bytes:
    """A small, valid one-page A4 PDF showing ``lines`` (ASCII) in Helvetica: the demo's
    and the tests' stand-in for a scanned paper."""
    text = "".join(f"({line.encode('ascii', 'replace').decode()}) Tj 0 -24 Td "
                   for line in lines)
    stream = f"BT /F1 14 Tf 72 770 Td {text}ET".encode()
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>",
               b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
               b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] "
               b"/Resources << /Font << /F1 5 0 R >> >> /Contents 4 0 R >>",
               b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream),
               b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"]
    out, offsets = bytearray(b"%PDF-1.4\n"), []
    for n, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (n, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1, xref)
    return bytes(out)


def _day(at: datetime) -> str:
    return to_local(at).date().isoformat()


def _criminal_step(command: str, county: str, at: datetime, rng) -> tuple[str, str, dict]:
    """(role, command, payload) of one step of a criminal referral."""
    n = lambda p: f"{p}-{rng.randint(100000, 999999)}"  # noqa: E731
    return {
        "request_approval": ("enforcement_unit", "request_approval",
                             {"transfer_report": "专案组核实：客车严重超员，涉嫌危险驾驶罪"}),
        "approve": ("agency_head", "approve", {"opinion": "同意移送"}),
        "refuse": ("agency_head", "refuse",
                   {"reason": "超员人数未达立案追诉标准，依法作出行政处罚"}),
        "transfer": ("enforcement_unit", "transfer", {
            "police_unit": f"{county}-psb", "procuratorate_unit": f"{county}-procuratorate",
            "procuratorate_copy": {"sent_on": _day(at)}, "documents": DOCUMENTS}),
        "sign_receipt": ("police", "sign_receipt", {"receipt_number": n("R"),
                                                    "receiving_officer": "值班民警"}),
        "file": ("police", "file", {"filing_number": n("F")}),
        "not_file": ("police", "not_file", {"reasons": "现有证据不足以认定涉嫌犯罪",
                                            "materials_returned": True}),
        "request_reconsideration": ("enforcement_unit", "request_reconsideration",
                                    {"reason": "超员人数已达追诉标准，请求复议"}),
        "decide_reconsideration": ("police", "decide_reconsideration",
                                   {"outcome": "uphold", "reason": "维持不予立案决定"}),
        "request_supervision": ("enforcement_unit", "request_supervision",
                                {"procuratorate_unit": f"{county}-procuratorate",
                                 "reason": "复议维持不立案，建议检察院立案监督"}),
        "request_explanation": ("procuratorate", "request_explanation",
                                {"reason": "要求公安机关说明不立案理由"}),
        "hand_over_evidence": ("enforcement_unit", "hand_over_evidence", {
            "items": ["客车一辆", "行车记录仪数据"], "handover_record_number": n("H")}),
        "end_investigation": ("police", "end_investigation", {
            "outcome": "prosecution", "offence": "危险驾驶罪", "decision_number": n("Q")}),
        "end_investigation_dropped": ("police", "end_investigation", {
            "outcome": "dropped", "decision_number": n("C"),
            "reason": "情节显著轻微，不认为是犯罪", "administrative_penalty_due": True}),
        "return_for_penalty": ("police", "return_for_penalty", {
            "reason": "撤销案件，建议依法给予行政处罚", "decision_number": n("T")}),
        "decide_prosecution": ("procuratorate", "decide_prosecution", {
            "outcome": "prosecute", "decision_number": n("G"),
            "court_unit": f"{county}-court", "offence": "危险驾驶罪"}),
        "record_judgment": ("court", "record_judgment", {
            "outcome": "convicted", "judgment_number": n("J"), "judgment_date": _day(at),
            "effective_on": _day(at), "offence": "危险驾驶罪", "sentence": "拘役一个月，并处罚金"}),
    }[command]


def _criminal(sd: Seeder, i: int, county: str, path, steps: int) -> None:
    actors = _actors(county)
    plan = path[:steps]
    gaps = [sd.hours(lo, hi) for _c, lo, hi in plan]
    finished = path is MAIN and steps == len(MAIN)
    end = sd.now - (sd.hours(24, 24 * 300) if finished else sd.tail())
    at = end - sum(gaps, timedelta()) - sd.hours(2, 30)
    seats = sd.rng.choice([19, 35, 45, 53])
    passengers = seats + (15 if seats >= 20 else 10)     # over the MPS filing standard
    scenario = f"criminal/{i}"
    rec = sd.create("police_handoff", actors["enforcement_unit"], "draft", {
        "case_number": f"WZ-{county[:2].upper()}-{to_local(at).year}-{i + 1:04d}",
        "county": county, "summary": f"客车严重超员：核载{seats}人，实载{passengers}人",
        "plate": f"浙C{sd.rng.randint(10000, 99999)}",
        "facts": {"vehicle_category": "passenger_bus", "service_type": "passenger_transport",
                  "rated_seats": seats, "passengers": passengers},
        "parties": [{"name": "驾驶员" + str(i), "role": "driver", "id_type": "resident_id",
                     "id_number": VALID_IDS[i % len(VALID_IDS)]}],
        "team": [{"name": "执法员甲", "badge_number": "1"},
                 {"name": "执法员乙", "badge_number": "2"}],
    }, at, scenario)
    if rec is None:
        return
    for (command, _lo, _hi), gap in zip(plan, gaps, strict=True):
        at += gap
        role, cmd, payload = _criminal_step(command, county, at, sd.rng)
        if cmd == "transfer":          # the papers go with it (Decree art. 6)
            for n, (kind, title) in enumerate(REQUIRED_FILES):
                sd.file(actors[role], rec, kind, title,
                        at - timedelta(minutes=20 * (len(REQUIRED_FILES) - n)), scenario)
        moved = sd.act("police_handoff", actors[role], rec, cmd, payload, at, scenario)
        if moved is None:
            break
        rec = moved
    sd.count("criminal_referral", rec["state"])


MARKET_PATHS = [[], ["acknowledge"], ["acknowledge", "accept"],
                ["acknowledge", "accept", "start_investigation"],
                ["acknowledge", "accept", "start_investigation", "report_result"],
                ["acknowledge", "accept", "start_investigation", "report_result", "close"],
                ["acknowledge", "return"], ["acknowledge", "return", "amend", "resend"]]


def _market_payload(command: str, rng) -> dict:
    n = rng.randint(100, 999)
    return {
        "acknowledge": {"receiving_officer": "何科长", "receipt_number": f"收-{n}"},
        "accept": {"acceptance_number": f"受理-{n}"},
        "start_investigation": {"investigation_number": f"立案-{n}"},
        "report_result": {"outcome": "penalty", "summary": "责令改正并处罚款",
                          "decision_number": f"罚〔2026〕{n}号", "fine_yuan": "20000"},
        "close": {"note": "已收到查处结果"},
        "return": {"reason_code": "insufficient_evidence", "reason": "缺现场照片",
                   "missing_evidence": ["photos_video"]},
        "amend": {"documents": [{"kind": "photos_video", "title": "现场照片",
                                 "reference": f"补-{n}"}]},
        "resend": {"response": "已补充现场照片"},
    }[command]


def _evidence(issuer: str, *kinds: str) -> list[dict]:
    return [{"kind": k, "title": f"{k} 材料", "reference": f"{issuer}〔2026〕{j}号"}
            for j, k in enumerate(kinds, 1)]


def _market(sd: Seeder, i: int, county: str, to_market: bool, steps: list[str]) -> None:
    transport = _actors(county)["enforcement_unit"]
    sender, receiver = (transport, MARKET) if to_market else (MARKET, transport)
    if to_market:
        payload = {"referral_kind": "driving_training_price_fraud",
                   "target_unit": MARKET.unit,
                   "summary": "驾培中介以“包过”招揽学员，报名后以各种名目加价收费",
                   "parties": [{"name": f"温州某驾培咨询服务有限公司{i}", "role": "intermediary",
                                "id_type": "uscc", "id_number": VALID_USCC}],
                   "documents": _evidence("温交执", "referral_letter", "case_description",
                                          "price_list", "fee_receipts")}
    else:
        payload = {"referral_kind": "vehicle_repair_unfiled", "target_unit": transport.unit,
                   "summary": "某汽车维修店未向交通运输主管部门备案即从事维修经营",
                   "parties": [{"name": f"温州某汽车维修店{i}", "role": "operator",
                                "id_type": "uscc", "id_number": VALID_USCC}],
                   "documents": _evidence("温市监", "referral_letter", "case_description",
                                          "inspection_record", "filing_query")}
    gaps = [sd.hours(4, 60) if c != "report_result" else sd.hours(200, 600) for c in steps]
    done = bool(steps) and steps[-1] == "close"
    end = sd.now - (sd.hours(24, 24 * 300) if done else sd.tail())
    at = end - sum(gaps, timedelta())
    prefix = "WZ" if to_market else "WZ-AMR"
    scenario = f"market/{i}"
    rec = sd.create("market_referral", sender, "send" if to_market else "send_to_transport",
                    {**payload, "county": county,
                     "case_number": f"{prefix}-{county[:2].upper()}-M{i + 1:04d}"}, at, scenario)
    if rec is None:
        return
    for command, gap in zip(steps, gaps, strict=True):
        at += gap
        actor = sender if command in ("amend", "resend", "close") else receiver
        moved = sd.act("market_referral", actor, rec, command, _market_payload(command, sd.rng),
                       at, scenario)
        if moved is None:
            break
        rec = moved
    sd.count("market_referral", rec["state"])


DOMAINS = ["key_vehicles", "overloading", "illegal_operation", "ride_hailing", "driving_training"]
DOMAIN_TITLES = ["两客一危", "超限运输", "非法营运", "网约车", "驾培"]


def _joint(sd: Seeder, i: int, by_city: bool, county: str, ago: timedelta, acks: int,
           reports: int, urgent: bool) -> None:
    """A joint action dispatched ``ago``: the first ``acks`` recipients acknowledge (one
    of them late when there are several), the first ``reports`` report progress and result."""
    at = sd.now - ago
    if by_city:
        others = [c for c in COUNTY_LIST if c not in (county,)]
        other = sd.rng.choice(others)
        if acks == 0 and county != "dongtou":
            other = "dongtou"     # a fresh action on the coast: the 港航 units have work
        area = [county, other]
        recipients = [f"{c}-command" for c in area] + [f"{county}-psb", "wenzhou-amr"]
        # 港航 (issue 17): the area's port units and the city's 港航管理中心 are dispatched
        # to as well (last: they wait to acknowledge, work in their 待办)
        recipients += [u for u in [f"{c}-port-shipping" for c in area] +
                       ["wenzhou-port-shipping"] if units.get(u) is not None]
        dispatcher = CITY
    else:
        area = [county]
        recipients = [f"{county}-psb", f"{county}-amr"]
        dispatcher = _actors(county)["county_command"]
    hours = 6 if ago > timedelta(hours=10) else 30
    window_start, window_end = at + timedelta(hours=1), at + timedelta(hours=1 + hours)
    domain = DOMAINS[i % len(DOMAINS)]
    scenario = f"joint/{i}"
    rec = sd.create("command", dispatcher, "dispatch", {
        "title": f"{'全市' if by_city else ''}{DOMAIN_TITLES[i % 5]}联合整治行动",
        "domain": domain, "area": area, "location": "104国道、甬台温高速出口",
        "window_start": window_start.isoformat(), "window_end": window_end.isoformat(),
        "priority": "urgent" if urgent else "normal",
        "instructions": "各承办单位按分工开展联合检查，发现涉嫌犯罪线索依法移送。",
        "recipients": recipients}, at, scenario)
    if rec is None:
        return
    actor_of = _recipient_actors(recipients)
    late = timedelta(minutes=sd.rng.choice([5, 12, 20, 45]))
    for n, unit in enumerate(recipients[:acks]):
        when = at + (late if n == 1 else timedelta(minutes=3 + n))
        rec = sd.act("command", actor_of[unit], rec, "acknowledge", {"note": "收到，立即部署"},
                     when, scenario) or rec
    for n, unit in enumerate(recipients[:min(reports, acks)]):
        when = window_start + timedelta(hours=hours / 2)
        rec = sd.act("command", actor_of[unit], rec, "report_progress",
                     {"note": "已出动执法人员，检查车辆中", "vehicles_checked": 20 + n},
                     when, scenario) or rec
        found = [{"route": "police", "case_number": f"WZ-JA-{i:03d}-{n}",
                  "summary": "客车严重超员，已移送公安"}] if n == 0 else []
        rec = sd.act("command", actor_of[unit], rec, "report_result", {
            "vehicles_checked": 40 + n, "cases_opened": 3, "referrals_made": len(found),
            "summary": "检查车辆，立案查处违法行为", "referrals": found},
            window_end + timedelta(hours=sd.rng.uniform(1, 30)), scenario) or rec
    sd.count("joint_action", rec["state"])


def _recipient_actors(units: list[str]) -> dict[str, Actor]:
    out = {}
    for unit in units:
        county = unit.split("-")[0]
        county = county if county in COUNTIES else None
        if unit.endswith("-command"):
            out[unit] = Actor(f"cmd-{county}", "county_command", unit, county)
        elif unit.endswith("-psb"):
            out[unit] = Actor(f"police-{county or 'city'}", "police", unit, county)
        elif unit.endswith("-port-shipping"):
            out[unit] = Actor(f"port-{county or 'city'}", "port_shipping", unit, county)
        else:
            out[unit] = Actor(f"amr-{county or 'city'}", "market_regulation", unit, county)
    return out


def _assistance(sd: Seeder, i: int, from_county: str, to_county: str, ago: timedelta,
                steps: list[str]) -> None:
    requester = _actors(from_county)["county_command"]
    target = _actors(to_county)["county_command"]
    at = sd.now - ago
    scenario = f"assistance/{i}"
    rec = sd.create("command", requester, "request_assistance", {
        "to_county": to_county, "subject": f"协查车辆浙C{sd.rng.randint(10000, 99999)}的营运情况",
        "request": "该车涉嫌非法营运，请协查车主及近三个月营运轨迹。",
        "domain": "illegal_operation",
        "plate": f"浙C{sd.rng.randint(10000, 99999)}"}, at, scenario)
    if rec is None:
        return
    payloads = {"approve": (CITY, {"opinion": "同意跨区协查"}),
                "refuse": (CITY, {"reason": "请先向相邻县区请求"}),
                "acknowledge": (target, {"note": "已签收"}),
                "answer": (target, {"answer": "车主系本辖区居民，已调取营运轨迹，详见附件"})}
    for command in steps:
        at += timedelta(hours=sd.rng.uniform(0.3, 1.5) if command != "answer" else 20)
        actor, payload = payloads[command]
        rec = sd.act("command", actor, rec, command, payload, at, scenario) or rec
    sd.count("assistance_request", rec["state"])


# 线上+线下联动 (issue 17): online alerts of all three domains sent through the alerts
# service's intake as their system clients, then worked by the teams as real users act.
# (scenario, source client, county, alert kind and fields, minutes ago, steps: (command,
# minutes after dispatch), result). Open ones wait on the team (dispatched, acknowledged,
# on site), a centre (disposed) or are overdue (the service's sweep escalates them).
SOURCES = {"overlimit_wim": "wim-platform", "key_vehicle_dynamic": "vehicle-monitoring",
           "illegal_operation_tip": "hotline-12328", "port_alarm": "port-monitoring"}
SITES = {"lucheng": "WIM-LC-01", "ouhai": "WIM-OH-01", "ruian": "WIM-RA-01",
         "yueqing": "WIM-YQ-01"}
SEATS = {"lucheng": (28.02, 120.66), "ouhai": (27.95, 120.61), "yueqing": (28.11, 120.98)}
ACK, ARRIVE, DISPOSE, CLOSE = "acknowledge", "arrive", "dispose", "close"
ALERT_SCENARIOS = [
    # the home counties' teams: every state of the loop, one closed with a criminal referral
    ("overlimit", "lucheng", 60 * 24 * 3, [(ACK, 12), (ARRIVE, 95), (DISPOSE, 200),
                                           (CLOSE, 260)], "case_opened"),
    ("overlimit", "lucheng", 20, [], None),
    ("speeding", "lucheng", 60 * 5, [], None),                 # missed ack: escalated
    ("tip", "lucheng", 60 * 6, [(ACK, 40)], None),
    ("fatigue", "lucheng", 110, [(ACK, 4), (ARRIVE, 35)], None),
    ("overlimit", "lucheng", 60 * 26, [(ACK, 20), (ARRIVE, 150), (DISPOSE, 240)], "warning"),
    ("bus", "lucheng", 60 * 24 * 10, [(ACK, 3), (ARRIVE, 25), (DISPOSE, 90), (CLOSE, 180)],
     "criminal"),
    ("overlimit", "ouhai", 60 * 8, [], None),                  # missed ack and arrival
    ("tip", "ouhai", 60 * 48, [(ACK, 70), (ARRIVE, 300), (DISPOSE, 420), (CLOSE, 600)],
     "false_alarm"),
    ("deviation", "ouhai", 60, [(ACK, 9)], None),
    # on site for a week, no result fed back: overdue (a missed feedback is not escalated;
    # a period of days ending on a weekend runs to the next working day)
    ("overlimit", "lucheng", 60 * 24 * 8, [(ACK, 25), (ARRIVE, 180)], None),
    ("overlimit", "ouhai", 60 * 24 * 9, [(ACK, 18), (ARRIVE, 120)], None),
    ("tip", "ouhai", 60 * 30, [(ACK, 30), (ARRIVE, 200), (DISPOSE, 400)], "warning"),
    # the port & shipping units
    ("port", "ZYA-01", 12, [], None),
    ("port", "DT-XM-01", 60 * 4, [(ACK, 8), (ARRIVE, 50)], None),
    ("port", "ZYA-01", 60 * 24 * 5, [(ACK, 15), (ARRIVE, 70), (DISPOSE, 180), (CLOSE, 240)],
     "case_opened"),
    ("port", "QL-01", 60 * 24, [(ACK, 25), (ARRIVE, 200), (DISPOSE, 300)], "warning"),
    # elsewhere in the city: the city centre's wall
    ("overlimit", "ruian", 90, [], None),
    ("tip", "yueqing", 60 * 24 * 4, [(ACK, 50), (ARRIVE, 600), (DISPOSE, 900), (CLOSE, 1000)],
     "not_found"),
    ("speeding", "yueqing", 35, [(ACK, 6)], None),
]


def _alert_of(i: int, shape: str, where: str) -> dict:
    plate = f"浙CYJ{i:03d}"
    alert_id = f"demo-{i:03d}"
    if shape == "overlimit":
        return {"alert_id": alert_id, "kind": "overlimit_wim", "plate": plate,
                "site": SITES[where], "gross_weight_kg": 61000 + 1000 * i, "limit_kg": 49000,
                "axle_load_kg": 14500, "excess_percent": round((12000 + 1000 * i) / 490, 1)}
    if shape in ("speeding", "bus", "fatigue", "deviation"):
        lat, lon = SEATS[where]
        alarm = {"speeding": "speeding", "bus": "speeding", "fatigue": "fatigue_driving",
                 "deviation": "route_deviation"}[shape]
        alert = {"alert_id": alert_id, "kind": "key_vehicle_dynamic", "plate": plate,
                 "alarm": alarm, "lat": lat, "lon": lon, "county": where,
                 "vehicle_category": "hazardous_goods" if shape == "deviation" else
                 "scheduled_bus" if shape == "bus" else "tour_bus"}
        if alarm == "speeding":
            alert.update(speed_kmh=128 if shape == "bus" else 96, speed_limit_kmh=80,
                         road_type="expressway")
        if alarm == "fatigue_driving":
            alert["duration_minutes"] = 262
        return alert
    if shape == "tip":
        return {"alert_id": alert_id, "kind": "illegal_operation_tip", "plate": plate,
                "ticket": f"12328-2026-{i:05d}", "channel": "hotline_12328", "county": where,
                "place": "火车南站出租车候客区",
                "summary": "群众反映一辆私家车在站前长期揽客，非法营运"}
    return {"alert_id": alert_id, "kind": "port_alarm", "berth": where,
            "vessel_name": f"浙温渡{i:02d}", "mmsi": f"41230{i:04d}",
            "alarm": {"ZYA-01": "no_valid_certificate", "DT-XM-01": "unsafe_berth",
                      "QL-01": "overloading"}.get(where, "other"),
            "detail": "船舶动态监控平台报警"}


def _dispose_payload(i: int, result: str, rec: dict) -> dict:
    if result == "criminal":
        county = rec["county"]
        return {"result": "case_opened", "note": "驾驶员承认超速，车辆已暂扣", "case": {
            "kind": "criminal_referral", "referral": {
                "case_number": f"WZ-{county[:2].upper()}-YJ-{i:04d}", "county": county,
                "summary": f"客车严重超速：{rec['plate']}在高速公路以128km/h行驶（限速80）",
                "plate": rec["plate"],
                "facts": {"vehicle_category": "passenger_bus",
                          "service_type": "passenger_transport", "road_type": "expressway",
                          "speed_kmh": 128, "speed_limit_kmh": 80},
                "parties": [{"name": f"驾驶员{i}", "role": "driver", "id_type": "resident_id",
                             "id_number": VALID_IDS[i % len(VALID_IDS)]}],
                "team": [{"name": "执法员甲", "badge_number": "1"},
                         {"name": "执法员乙", "badge_number": "2"}]}}}
    if result == "case_opened":
        return {"result": "case_opened", "note": "现场查处", "case": {
            "kind": "administrative", "case_number": f"温交执罚〔2026〕YJ{i:03d}号"}}
    return {"result": result, "note": {"warning": "批评教育，责令改正",
                                       "false_alarm": "核查为设备误报",
                                       "not_found": "到场未发现目标车辆"}[result]}


def _alert(sd: Seeder, i: int, shape: str, where: str, ago_minutes: int, steps: list,
           result: str | None) -> None:
    """One online alert through the intake (backdated) and the team's steps after it."""
    alert = _alert_of(i, shape, where)
    source = SOURCES[alert["kind"]]
    client = Actor(source, "alert_source", source, None)
    dispatched = sd.now - timedelta(minutes=ago_minutes)
    answer = sd.rpc.alerts.intake(sd.token(client), alert, at=dispatched.isoformat())
    rec = sd.rpc.alerts.get(sd.token(CITY), answer["task_id"])
    team = Actor(f"team-{rec['county']}", rec["handler_role"], rec["counterpart_unit"],
                 rec["county"])
    centre = _actors(rec["county"])["county_command"]
    scenario = f"alert/{i}"
    for command, minutes in steps:
        payload = {ACK: {"note": "收到，立即出警"}, ARRIVE: {"note": "已到达现场"},
                   DISPOSE: _dispose_payload(i, result or "warning", rec),
                   CLOSE: {"note": "审核通过，办结"}}[command]
        moved = sd.act("alerts", centre if command == CLOSE else team, rec, command, payload,
                       dispatched + timedelta(minutes=minutes), scenario)
        if moved is None:
            break
        rec = moved
    sd.count("alert_task", rec["state"])


def plan(count: int) -> int:
    """How many handoffs ``seed(count)`` creates (the progress bar's total)."""
    return (max(count, MIN_REFERRALS) + max(8, count // 2) + 2 * max(8, count // 3)
            + len(ALERT_SCENARIOS))


def seed(rpc, count: int = 20, progress=lambda n: None, rng=None, token=issue_token,
         now: datetime | None = None) -> dict:
    """Seed ``count`` criminal referrals (at least MIN_REFERRALS) and, around them, market
    referrals, joint actions and assistance requests (``plan(count)`` handoffs in all).
    ``token(actor)`` signs each acting user's token (the CLI's is audited)."""
    sd = Seeder(rpc, now or datetime.now(timezone.utc), rng or random.Random(2026), token)
    for i in range(max(count, MIN_REFERRALS)):   # criminal referrals, every stage
        if i < MIN_REFERRALS:
            county, (path, steps) = HOME[i % len(HOME)], STAGES[i // len(HOME)]
        else:
            county = COUNTY_LIST[i % len(COUNTY_LIST)]
            path, steps = STAGES[i % len(STAGES)]
        _criminal(sd, i, county, path, steps)
        progress(1)
    for i in range(max(8, count // 2)):          # market referrals, both ways
        county = HOME[i % 2] if i % 4 < 2 else COUNTY_LIST[i % len(COUNTY_LIST)]
        steps = MARKET_PATHS[(i // 2) % len(MARKET_PATHS)]
        _market(sd, i, county, to_market=i % 3 != 2, steps=steps)
        progress(1)
    for i in range(max(8, count // 3)):          # joint actions
        county = HOME[i % 2] if i % 3 < 2 else COUNTY_LIST[i % len(COUNTY_LIST)]
        shape = i % 4
        if shape == 0:     # just dispatched, nobody has acknowledged yet
            _joint(sd, i, True, county, timedelta(minutes=8), 0, 0, urgent=False)
        elif shape == 1:   # yesterday: some acknowledged, one never did (escalated)
            _joint(sd, i, True, county, timedelta(hours=sd.rng.uniform(20, 60)), 2, 1, False)
        elif shape == 2:   # a county centre's own action, under way
            _joint(sd, i, False, county, timedelta(hours=3), 2, 0, urgent=True)
        else:              # long done
            _joint(sd, i, True, county, timedelta(days=sd.rng.uniform(10, 300)), 4, 4, False)
        progress(1)
    for i in range(max(8, count // 3)):          # assistance requests
        home = HOME[i % 2]
        neighbour = "ouhai" if home == "lucheng" else "lucheng"
        far = ["taishun", "cangnan", "yueqing", "wencheng"][i % 4]
        shape = i % 4
        if shape == 0:     # from a neighbour to a home county: to acknowledge
            _assistance(sd, i, neighbour, home, timedelta(hours=sd.rng.choice([1, 5])), [])
        elif shape == 1:   # acknowledged, answer due
            _assistance(sd, i, neighbour, home, timedelta(hours=30), ["acknowledge"])
        elif shape == 2:   # to a far county: the city centre must approve
            _assistance(sd, i, home, far, timedelta(hours=sd.rng.choice([2, 26])), [])
        else:              # answered long ago
            _assistance(sd, i, far if i % 8 == 3 else neighbour, home,
                        timedelta(days=sd.rng.uniform(5, 200)),
                        (["approve"] if i % 8 == 3 else []) + ["acknowledge", "answer"])
        progress(1)
    for i, scenario in enumerate(ALERT_SCENARIOS):   # online alerts and their tasks
        _alert(sd, i, *scenario)
        progress(1)
    return {"referrals": max(count, MIN_REFERRALS), "handoffs": plan(count),
            "already_there": sd.skipped, "by_kind": sd.counts}
