"""Referrals to and from market regulation (市场监管移送)."""
