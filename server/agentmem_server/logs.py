"""Structured JSON logs with the request id of the request being served."""

from __future__ import annotations

import json
import logging
import sys
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

request_id: ContextVar[str | None] = ContextVar("agentmem_request_id", default=None)
"""The id of the request this task serves (set by the request middleware)."""

_STANDARD = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, message, request id and any ``extra``."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        rid = request_id.get()
        if rid is not None:
            out["request_id"] = rid
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                out[key] = value
        if record.exc_info:
            out["exc_info"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str, ensure_ascii=False)


def configure(*, json_logs: bool = True, level: str = "INFO") -> None:
    """Send every log (agentmem's, uvicorn's, the MCP SDK's and any other library's) to stderr,
    as JSON lines when ``json_logs``."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        JsonFormatter() if json_logs else logging.Formatter("%(levelname)s %(name)s %(message)s")
    )
    for name in ("agentmem", "agentmem_server", "uvicorn", "uvicorn.error"):
        logger = logging.getLogger(name)
        logger.handlers = [handler]
        logger.setLevel(level)
        logger.propagate = False
    # Everything else (the MCP SDK's loggers, say) reaches the root logger; with a handler
    # there, the SDK's logging.basicConfig (rich text) does nothing.
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level)
    logging.captureWarnings(True)  # Python warnings become log lines too, not raw stderr text
    # The request middleware logs each request with its id; uvicorn's own access log would
    # repeat it without one.
    logging.getLogger("uvicorn.access").disabled = True


__all__ = ["JsonFormatter", "configure", "request_id"]
