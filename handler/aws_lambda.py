"""AWS Lambda entry point: `handler.aws_lambda.handler`.

The app, its config, its HTTP pool and its Redis pool are built once per container (at the first
invocation's import) and reused by every invocation after it. Mangum runs with lifespan off: the
engine creates its clients lazily and rebuilds them if the event loop changes.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from mangum import Mangum

from handler.app import create_app
from handler.logs import setup_logging
from handler.observability import flushing
from router.config import load_config

setup_logging(os.environ.get("LANEWAY_LOG_LEVEL", "INFO"))

# Buffered mode: Mangum returns each response in one piece (streams included, as one body).
app = create_app(load_config(), watch_disconnect=False)
# Lambda may freeze the process the moment a response is returned: a release sent after it
# could wait there for the next invocation, holding its slot until the lease runs out.
app.state.router.lanes.release_in_background = False
# Callbacks, alerts and EMF metric lines go out before each invocation returns.
_serve = flushing(Mangum(app, lifespan="off"), app.state.observability)
if getattr(app.state, "config_watcher", None) is None:
    handler = _serve
else:  # config_reload_seconds: the check runs as an invocation starts, once it is due
    from handler.reload import check_now

    def handler(event: Any, context: Any) -> Any:
        check_now(app)
        return _serve(event, context)

if os.environ.get("AWS_LAMBDA_INITIALIZATION_TYPE") == "snap-start":
    from handler.snapstart import register

    register(app)

logging.getLogger("laneway").debug("lambda handler ready")
