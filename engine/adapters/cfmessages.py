"""What the Queues REST API hands back: leased messages (with their bodies decoded as the
executor takes them) and the result of an ack call."""

from __future__ import annotations

import base64
import binascii
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass

from engine.runtime.messages import Body

log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class Pulled:
    """One leased message. ``body`` is decoded (see :func:`decode_body`)."""

    id: str
    lease_id: str
    attempts: int
    body: Body
    timestamp_ms: int | None = None


@dataclass(frozen=True, kw_only=True)
class AckResult:
    ack_count: int
    retry_count: int
    warnings: Mapping[str, str]


def decode_body(body: object, metadata: object) -> Body:
    """A pulled body as the executor takes it. ``CF-Content-Type`` ``json`` (the default)
    and ``bytes`` arrive base64-encoded, ``text`` as is. A json body that is not valid
    base64 is taken as plain JSON text (a JSON object starts with ``{``, outside base64's
    alphabet, so the two cannot be confused). ``v8`` cannot be decoded outside Workers:
    it is passed on and the executor dead-letters it as not JSON."""
    meta = metadata if isinstance(metadata, Mapping) else {}
    kind = str(meta.get("CF-Content-Type") or "json")
    if isinstance(body, Mapping):
        return body
    if not isinstance(body, str):
        return json.dumps(body)
    if kind in ("json", "bytes"):
        try:
            return base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            return body
    if kind != "text":
        log.warning("message body has content type %r, which only Workers can decode", kind)
    return body
