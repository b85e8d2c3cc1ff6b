"""Notifications out (issue 14): who is told what, over which channel."""
