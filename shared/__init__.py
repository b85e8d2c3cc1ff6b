"""Liandong shared package: the one place for the envelope, outbox/inbox, database,
auth, deadline calendar, logging and the exchange standards every service uses."""
