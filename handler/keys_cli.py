"""`laneway keys export|import`: back up and restore key and team records (docs/tenants.md).

The records are read from and written to the store the config names (its Redis, usually).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from router.router import Router

__all__ = ["keys_main"]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="laneway keys", description="Export or import virtual keys and teams as JSON "
        "lines (keys as SHA-256 hashes, spend included).")
    sub = p.add_subparsers(dest="action", required=True)
    for action, stream, what in (("export", "--output", "write to this file (default: "
                                  "standard output)"),
                                 ("import", "--input", "read this file (default: standard "
                                  "input)")):
        one = sub.add_parser(action)
        one.add_argument("--config", "-c", help="config file path, s3://bucket/key or "
                         "gs://bucket/key (default: CONFIG_FILE_PATH or LANEWAY_CONFIG)")
        one.add_argument(stream, "-o" if action == "export" else "-i", help=what)
    return p


def keys_main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    from router.config import load_config
    from router.errors import ConfigError, RequestError
    from router.router import Router

    try:
        router = Router.from_config(load_config(args.config))
    except ConfigError as exc:
        print(f"laneway: {exc}", file=sys.stderr)
        return 2
    try:
        if args.action == "export":
            if args.output:
                with open(args.output, "w", encoding="utf-8") as out:
                    return asyncio.run(_export(router, out))
            return asyncio.run(_export(router, sys.stdout))
        if args.input:
            with open(args.input, encoding="utf-8") as source:
                return asyncio.run(_import(router, source))
        return asyncio.run(_import(router, sys.stdin))
    except RequestError as exc:  # the store is unreachable
        print(f"laneway: {exc.message}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"laneway: {exc}", file=sys.stderr)
        return 1


async def _export(router: Router, out: TextIO) -> int:
    from router.tenants.transfer import export_lines

    count = 0
    try:
        async for line in export_lines(router.tenants):
            out.write(line + "\n")
            count += 1
    finally:
        await router.state.close()
    print(f"laneway: exported {count} record(s)", file=sys.stderr)
    return 0


async def _import(router: Router, source: TextIO) -> int:
    from router.tenants.transfer import import_lines

    try:
        done = await import_lines(router.tenants, source)
    finally:
        await router.state.close()
    for problem in done.problems:
        print(f"laneway: not imported: {problem}", file=sys.stderr)
    print(f"laneway: imported {done.teams} team(s) and {done.keys} key(s)", file=sys.stderr)
    return 1 if done.problems else 0
