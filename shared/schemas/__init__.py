"""Marshmallow schemas: the one source of the event payload contracts."""
