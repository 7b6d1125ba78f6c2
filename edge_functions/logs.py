"""Structured logs: one JSON object a line on stderr, with the record's extra fields."""

from __future__ import annotations

import json
import logging
import time

_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "color_message"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        entry.update({k: v for k, v in vars(record).items() if k not in _STANDARD})
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


class RedactQuery(logging.Filter):
    """Access lines keep the path and drop the query: user ids travel in `?uid=`, and no
    user id may reach a log in the clear."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and any(
                isinstance(arg, str) and "?" in arg for arg in record.args):
            record.args = tuple(_without_query(arg) if isinstance(arg, str) else arg
                                for arg in record.args)
        return True


def _without_query(text: str) -> str:
    path, mark, _ = text.partition("?")
    return path + mark + ("…" if mark else "")


def configure(level: str = "INFO") -> None:
    """JSON lines on stderr for the whole process (uvicorn's loggers included).

    uvicorn's access logger is left where uvicorn put it: `--no-access-log` turns its
    propagation off, and this may run after that (in the app factory), so turning
    propagation back on here would log every request anyway.
    """
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    access = logging.getLogger("uvicorn.access")
    access.handlers[:] = []
    if not any(isinstance(f, RedactQuery) for f in access.filters):
        access.addFilter(RedactQuery())
