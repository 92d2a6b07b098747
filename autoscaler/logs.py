"""Log configuration: text for people, JSON lines for log pipelines.

Context (namespace, workload, rule, node...) travels as ``extra`` fields, usually through a
``logging.LoggerAdapter``; both formats print it. Both mask credentials in URLs (a password,
``?token=``...) whatever logged them, an HTTP client's error included.
"""

from __future__ import annotations

import json
import logging
import sys
from typing import Any, Literal, TextIO

from runtime.clock import to_datetime
from runtime.redact import redact_text

# Attributes every LogRecord has; anything else on a record came from ``extra``.
_STANDARD = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", None, None)).keys()
    | {"message", "asctime", "taskName"}
)


def _context(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in vars(record).items() if k not in _STANDARD and not k.startswith("_")}


class TextFormatter(logging.Formatter):
    """``2026-11-25T10:00:00.123Z INFO  collectors.kubelet: message key=value``."""

    def format(self, record: logging.LogRecord) -> str:
        stamp = to_datetime(record.created).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
        text = f"{stamp} {record.levelname:<7} {record.name}: {record.getMessage()}"
        context = _context(record)
        if context:
            text += " " + " ".join(f"{k}={v}" for k, v in sorted(context.items()))
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        return redact_text(text)


class JsonFormatter(logging.Formatter):
    """One JSON object per line with ``ts``, ``level``, ``logger``, ``msg`` and the context."""

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "ts": to_datetime(record.created).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "msg": redact_text(record.getMessage()),
        }
        doc.update(
            (k, redact_text(v) if isinstance(v, str) else v) for k, v in _context(record).items()
        )
        if record.exc_info:
            doc["exc"] = redact_text(self.formatException(record.exc_info))
        return json.dumps(doc, default=str)


def configure_logging(
    fmt: Literal["text", "json"] = "text", level: str = "INFO", stream: TextIO | None = None
) -> None:
    """Send all logs to ``stream`` (stderr by default) in the chosen format."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    # httpx logs every request at INFO: one line per kubelet per scrape drowns everything else.
    logging.getLogger("httpx").setLevel(max(root.level, logging.WARNING))
