"""Logging of the served process: one JSON object per line on stderr (or plain text).

The same configuration is given to gunicorn (its `logconfig_dict`), so the app's lines and
gunicorn's own (worker start, timeouts, shutdown) come out in one format on one stream. gunicorn's
access log stays off: the app writes one richer line per request itself (api/observe.py).

What goes into log lines is decided where they are written; the rule for all of them: no patient
identifiers, no tokens or JWTs, no request bodies, no query strings.
"""

from __future__ import annotations

import hashlib
import hmac
import logging.config
import re
import secrets
from typing import Any, Literal

LogFormat = Literal["json", "text"]
ACCESS_LOGGER = "cytokine_cds.access"

_TEXT_FORMAT = "%(asctime)s %(levelname)s [%(process)d] %(name)s: %(message)s"
# What gunicorn quotes from a refused request: its request line, method or header.
_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"")


class ClientTextRedactor(logging.Filter):
    """gunicorn's lines about requests it refuses quote what the client sent (a request line
    holds the path, which may hold a patient id): the quoted parts, and the URI of a request it
    failed on, are left out; the kind of refusal stays."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if message.startswith("Invalid request from"):
            record.msg, record.args = _QUOTED.sub("<not logged>", message), ()
        elif message.startswith("Error handling request"):
            record.msg, record.args = "Error handling request (its URI is not logged)", ()
        return True


_UUID = re.compile(r"(urn:uuid:)?[0-9a-fA-F]{8}(-?[0-9a-fA-F]{4}){3}-?[0-9a-fA-F]{12}")


# Keyed per process: a record number is a short string, and an unkeyed hash of it in a log
# could be reversed by trying every candidate.
_LOG_KEY = secrets.token_bytes(32)


def logged_hook_instance(hook_instance: str) -> str:
    """The hookInstance as sent when it is a UUID, as the spec asks; anything else (a client
    may put an encounter or record number there) as a short keyed hash that still correlates
    the lines of one call: "hmac:3f1a9c0b2e4d"."""
    if _UUID.fullmatch(hook_instance):
        return hook_instance
    digest = hmac.new(_LOG_KEY, hook_instance.encode(), hashlib.sha256).hexdigest()
    return "hmac:" + digest[:12]


def logging_config(level: str, log_format: LogFormat) -> dict[str, Any]:
    """A logging.config.dictConfig dict for the app and gunicorn (master and workers)."""
    if log_format == "json":
        formatter: dict[str, Any] = {
            "()": "pythonjsonlogger.orjson.OrjsonFormatter",
            "fmt": ["levelname", "name", "process", "message"],
            "rename_fields": {"levelname": "level", "name": "logger", "process": "pid"},
            "timestamp": "time",
        }
    else:
        formatter = {"format": _TEXT_FORMAT}
    handler = {
        "class": "logging.StreamHandler",
        "formatter": "service",
        "stream": "ext://sys.stderr",
    }
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"service": formatter},
        "filters": {"client_text": {"()": ClientTextRedactor}},
        "handlers": {"stderr": handler},
        "root": {"level": level.upper(), "handlers": ["stderr"]},
        "loggers": {
            # gunicorn's own loggers: through the root handler, in the same format.
            "gunicorn.error": {
                "level": level.upper(),
                "handlers": [],
                "propagate": True,
                "filters": ["client_text"],
            },
            "gunicorn.access": {"level": "WARNING", "handlers": [], "propagate": False},
            # urllib3 logs every request URL (with patient ids in the query) at DEBUG.
            "urllib3": {"level": "WARNING"},
        },
    }


def configure_logging(level: str, log_format: LogFormat) -> dict[str, Any]:
    """Apply the configuration to this process; returns it (for gunicorn's logconfig_dict)."""
    config = logging_config(level, log_format)
    logging.config.dictConfig(config)
    # A library's warning (matplotlib on a short date range) is printed raw to stderr otherwise:
    # one line that is not JSON breaks a log pipeline that parses every line.
    logging.captureWarnings(True)
    return config
