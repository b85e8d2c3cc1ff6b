"""The police handoff's database: the shared handoff tables and outbox/inbox."""
from shared.handoffs import HandoffStore

SERVICE = "police_handoff"
SOURCE = "/wenzhou/transport/police_handoff"

handoffs = HandoffStore(SERVICE, SOURCE)
metadata = handoffs.metadata
store = handoffs.store
