"""`mysimbdp files retry`: a rejected or failed file sent back through admission, with a receipt chain."""

from __future__ import annotations

import argparse
from typing import Any

from ..core.settings import Settings
from .common import print_rows, redis_client
from .dead import tenant_of_registry


def files_retry(settings: Settings, args: argparse.Namespace) -> int:
    from ..batch import retries

    tenant_of_registry(settings, args.tenant, replaying=False)
    out = [retries.retry(settings, redis_client(settings), args.tenant, target) for target in args.files]
    return print_rows(out, args.json, lambda r: f"{r['file']} ({r['previous_status']}: {r['previous_reason']}) -> "
                                                f"{r['staged']}; its new receipt will say retry_of {r['retry_of']}")


def add_parsers(sub: Any, json_flag: Any) -> None:
    files = sub.add_parser("files", help="a tenant's files: send rejected or failed ones back through admission"
                           ).add_subparsers(dest="files_command", required=True, metavar="{retry}")
    p = files.add_parser("retry", help="move rejected or failed files back to staging/<tenant>/; admission checks "
                                       "and charges them again, and the new receipt names the old (retry_of)")
    p.add_argument("--tenant", required=True, help="the tenant the files belong to")
    p.add_argument("files", nargs="+", metavar="FILE",
                   help="a file in rejected/<tenant>/ or failed/<tenant>/ (a path, or its name there)")
    json_flag(p)
    p.set_defaults(handler=files_retry)
