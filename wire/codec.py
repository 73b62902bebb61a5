"""Parsing at the network edge: size limit, JSON, model validation.

Every subscriber calls :func:`decode`; it never raises anything but
:class:`RejectedPayload`, whose ``reason`` is a short stable word used as a
counter key (``too_large``, ``malformed``, ``schema``).
"""

from __future__ import annotations

from typing import TypeVar

from pydantic import BaseModel, ValidationError

MAX_PAYLOAD_BYTES = 256 * 1024

M = TypeVar("M", bound=BaseModel)


class RejectedPayload(Exception):
    """A payload that must not be used (T6), with the reason and topic for the log."""

    def __init__(self, reason: str, topic: str, detail: str = "") -> None:
        super().__init__(f"{reason} on {topic}: {detail}" if detail else f"{reason} on {topic}")
        self.reason = reason
        self.topic = topic
        self.detail = detail


def decode(model: type[M], payload: bytes | bytearray, topic: str) -> M:
    """Validate ``payload`` as ``model`` or raise :class:`RejectedPayload`."""
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise RejectedPayload("too_large", topic, f"{len(payload)} bytes")
    try:
        return model.model_validate_json(payload)
    except ValidationError as e:
        errors = e.errors(include_url=False, include_input=False)
        # "json_invalid" means the bytes were not JSON at all; anything else is
        # JSON of the wrong shape. Both are rejected; the counters tell them apart.
        reason = "malformed" if errors and errors[0]["type"] == "json_invalid" else "schema"
        where = ".".join(str(p) for p in errors[0]["loc"]) if errors else ""
        msg = errors[0]["msg"] if errors else ""
        raise RejectedPayload(reason, topic, f"{where}: {msg}"[:200]) from e
    except UnicodeDecodeError as e:  # pragma: no cover - pydantic reports this as json_invalid
        raise RejectedPayload("malformed", topic, "not UTF-8") from e


def encode(message: BaseModel) -> bytes:
    return message.model_dump_json().encode()
