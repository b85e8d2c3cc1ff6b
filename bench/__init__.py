"""``make bench``: Liandong's event path against the broker's own ceiling (bench/run.py)."""
