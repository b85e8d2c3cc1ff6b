"""``python -m bench`` — see ``bench/run.py`` (``--help``)."""
from bench.run import main

raise SystemExit(main())
