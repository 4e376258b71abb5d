"""The `laneway` command: load the config, then serve it with uvicorn.

    laneway --config examples/config.yaml --port 4000
    laneway keys export --config config.yaml > tenants.jsonl     # keys (as hashes) and teams
    laneway keys import --config config.yaml < tenants.jsonl
"""

from __future__ import annotations

import argparse
import os
import sys

from handler.logs import setup_logging

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="laneway", description="OpenAI-compatible LLM gateway "
                                "with priority lanes.")
    p.add_argument("--config", "-c", help="config file path, s3://bucket/key or gs://bucket/key "
                   "(default: CONFIG_FILE_PATH, LANEWAY_CONFIG or LITELLM_CONFIG_BUCKET_*)")
    p.add_argument("--host", default=os.environ.get("HOST", "0.0.0.0"))
    p.add_argument("--port", type=int, default=int(os.environ.get("PORT", "4000")))
    p.add_argument("--detailed_debug", "--detailed-debug", action="store_true",
                   help="log at DEBUG level")
    p.add_argument("--num_workers", "--workers", type=int, default=1,
                   help="uvicorn worker processes (more than one needs Redis, see below)")
    p.add_argument("--allow_per_worker_state", "--allow-per-worker-state", action="store_true",
                   help="run several workers without Redis: each keeps its own lines, windows "
                   "and limits, so every limit is multiplied by the number of workers")
    return p


def _per_worker_state(args: argparse.Namespace, state: str) -> str | None:
    """Why several workers cannot run on `state`, or None when they may."""
    if args.num_workers <= 1 or state != "memory" or args.allow_per_worker_state:
        return None
    return (f"--num_workers {args.num_workers} needs Redis: without it each worker keeps its "
            f"own lines and limits, so every rpm, tpm and max_parallel_requests limit would be "
            f"{args.num_workers} times the configured one. Configure Redis (router_settings."
            f"redis_url or redis_host, or REDIS_URL / REDIS_HOST), run one worker, or pass "
            f"--allow_per_worker_state to accept per-worker limits")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["keys"]:
        from handler.keys_cli import keys_main

        return keys_main(argv[1:])
    parser = _parser()
    args = parser.parse_args(argv)
    if args.num_workers < 1:
        parser.error("--num_workers must be 1 or more")
    level = "DEBUG" if args.detailed_debug else os.environ.get("LANEWAY_LOG_LEVEL", "INFO")
    setup_logging(level)

    from handler.app import create_app
    from router.config import load_config
    from router.errors import ConfigError

    try:
        config = load_config(args.config)
        app = create_app(config)  # settings read from the environment are checked here too
    except ConfigError as exc:
        print(f"laneway: {exc}", file=sys.stderr)
        return 2
    refusal = _per_worker_state(args, app.state.router.state.name)
    if refusal:
        print(f"laneway: {refusal}", file=sys.stderr)
        return 2

    import uvicorn

    from handler.connections import serve_options

    options = {"host": args.host, "port": args.port, "log_level": level.lower(),
               "access_log": args.detailed_debug, "server_header": False,
               **serve_options(app.state.limits)}
    if args.num_workers > 1:
        # Each worker process builds its own app from the environment (handler.app:app).
        if args.config:
            os.environ.pop("CONFIG_FILE_PATH", None)
            os.environ["LANEWAY_CONFIG"] = args.config
        os.environ["LANEWAY_LOG_LEVEL"] = level
        uvicorn.run("handler.app:app", workers=args.num_workers, **options)
        return 0

    uvicorn.run(app, **options)
    return 0


if __name__ == "__main__":
    sys.exit(main())
