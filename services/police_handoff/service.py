"""nameko adapter of the criminal referral (行刑衔接) service: the shared handoff RPC
(create, act, get, list, procedure, health) over this service's domain, plus the
judgment standards."""
from __future__ import annotations

from services.police_handoff import domain
from services.police_handoff.store import handoffs
from shared import handoffs as handoff  # module import: nameko run must not see the base
from shared.auth import verify_token
from shared.logging import configure_logging
from shared.nameko_ext import Database, OutboxRelay, rpc
from shared.revocations import Revocations
from shared.standards import judgment_rules
from shared.tokenkeys import check_startup

configure_logging("police_handoff")
check_startup("police_handoff")   # production: no start without fit token keys
# a bad CRIMINAL_REFERRAL_PERIODS or LIANDONG_JUDGMENT_PARAMETERS stops the service at
# start, naming the variable and the key, instead of failing the first request
domain.procedure()
judgment_rules()


class PoliceHandoffService(handoff.HandoffService):
    name = "police_handoff"
    domain = domain
    handoffs = handoffs

    db = Database(handoffs.store)
    relay = OutboxRelay(handoffs.store)
    revocations = Revocations()      # refuses revoked tokens, fails closed

    @rpc
    def judgment_form(self, token):
        """The judgment standard as a form: rules with the facts each is evaluated on."""
        verify_token(token)
        return judgment_rules().form()

    @rpc
    def evaluate(self, token, facts):
        """Judgment standards on a case's facts: recommendations naming rule and basis."""
        verify_token(token)
        return domain.recommend(facts)
