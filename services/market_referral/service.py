"""nameko adapter of the market-regulation referral (市场监管移送) service: the shared
handoff RPC (create, act, get, list, procedure, health) over this service's domain.
``get`` lists only the next actions of the caller's side (``domain.may_act``) and
shows the referral's ``case_number`` and ``linked`` handoffs (e.g. the criminal
referral of the same case in police_handoff)."""
from __future__ import annotations

from services.market_referral import domain
from services.market_referral.store import handoffs
from shared import handoffs as handoff  # module import: nameko run must not see the base
from shared.logging import configure_logging
from shared.nameko_ext import Database, OutboxRelay, rpc
from shared.tokenkeys import check_startup

configure_logging("market_referral")
check_startup("market_referral")   # production: no start without fit token keys


class MarketReferralService(handoff.HandoffService):
    name = "market_referral"
    domain = domain
    handoffs = handoffs

    db = Database(handoffs.store)
    relay = OutboxRelay(handoffs.store)

    @rpc
    def procedure(self):
        """The shared table plus directions and sides, referral kinds with their required
        evidence and legal basis, and the evidence catalogue."""
        return {**handoff.HandoffService.procedure(self), **domain.describe()}
