"""``python -m shared.healthcheck SERVICE``: exit 0 when SERVICE answers its
``health`` RPC over RabbitMQ within the timeout (used by compose and ``make run``)."""
from __future__ import annotations

import argparse
import json
import os
import sys

from shared.deadletters import DEFAULT_AMQP_URI


def check(service: str, timeout: float = 5.0, uri: str | None = None) -> dict:
    from nameko.standalone.rpc import ClusterRpcProxy
    config = {"AMQP_URI": uri or os.environ.get("AMQP_URI", DEFAULT_AMQP_URI)}
    with ClusterRpcProxy(config, timeout=timeout) as proxy:
        return getattr(proxy, service).health()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shared.healthcheck",
                                     description=__doc__)
    parser.add_argument("service")
    parser.add_argument("--timeout", type=float, default=5.0)
    args = parser.parse_args(argv)
    try:
        print(json.dumps(check(args.service, args.timeout), default=str))
    except Exception as exc:  # noqa: BLE001 - any failure means unhealthy
        print(f"{args.service} unhealthy: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
