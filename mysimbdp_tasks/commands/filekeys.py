"""`mysimbdp filekey T [--rotate]`: the key a tenant seals its files with (``name.csv.enc`` ...)."""

from __future__ import annotations

import argparse
import base64
import json
from typing import Any

from ..core.settings import Settings


def filekey(settings: Settings, args: argparse.Namespace) -> int:
    from ..security import filekeys

    value = filekeys.key(settings.home, args.name, rotate=args.rotate)
    found = {"tenant": args.name, "key_file": str(filekeys.path(settings.home, args.name)),
             "key_id": filekeys.key_id(value).hex(), "rotated": args.rotate}
    if args.show:
        found["key"] = base64.urlsafe_b64encode(value).decode("ascii")
    if args.json:
        print(json.dumps(found, indent=2))
        return 0
    print(f"tenant {args.name}: file key id {found['key_id']} in {found['key_file']} (mode 0600)"
          + ("; rotated: files sealed with the old key are now refused (wrong_key)" if args.rotate else ""))
    if args.show:
        print(f"  key (base64url): {found['key']}")
    print(f"  seal files with: python -m producers.batch --tenant {args.name} --encrypt INPUT ...")
    return 0


def add_parsers(sub: Any, json_flag: Any) -> None:
    p = sub.add_parser("filekey", help="a tenant's file key, for files it stages sealed (name.csv.enc, ...); "
                                       "created on first use")
    p.add_argument("name", help="the tenant")
    p.add_argument("--rotate", action="store_true", help="replace the key (files sealed with the old one are refused)")
    p.add_argument("--show", action="store_true", help="also print the key itself (for a client on another host)")
    json_flag(p)
    p.set_defaults(handler=filekey)
