"""The wire contract every component shares: topics, message models, MQTT link.

Components never import each other; they meet only on the broker, through what
is defined here. Everything in this package is legally relevant for the
components that use it (it is part of their software identifier).
"""

from wire.codec import MAX_PAYLOAD_BYTES, RejectedPayload, decode
from wire.topics import Topics

__all__ = ["MAX_PAYLOAD_BYTES", "RejectedPayload", "Topics", "decode"]
