"""The market referral's database: the shared handoff tables and outbox/inbox."""
from shared.handoffs import HandoffStore

SERVICE = "market_referral"
SOURCE = "/wenzhou/transport/market_referral"

handoffs = HandoffStore(SERVICE, SOURCE)
metadata = handoffs.metadata
store = handoffs.store
