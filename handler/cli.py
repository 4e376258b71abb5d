"""The `laneway` command: load the config, then serve it with uvicorn.

    laneway --config examples/config.yaml --port 4000
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
                   help="uvicorn worker processes")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
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
