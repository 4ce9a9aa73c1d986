"""Verifying the webhooks LightSpeed sends, by the Standard Webhooks algorithm."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
from typing import Any, Mapping, Optional, Union

from .errors import WebhookVerificationError

#: How far a webhook's timestamp may be from the receiver's clock, either way (the spec's 5 min).
TOLERANCE_SECS = 300
_PREFIX = "whsec_"


def _secret_key(secret: str) -> bytes:
    encoded = secret[len(_PREFIX):] if secret.startswith(_PREFIX) else secret
    try:
        key = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError) as error:
        raise WebhookVerificationError("the secret is not whsec_ followed by base64") from error
    if not key:
        raise WebhookVerificationError("the secret is empty")
    return key


def _header(headers: Mapping[str, str], name: str) -> str:
    for key, value in headers.items():
        if key.lower() == name:
            return value
    raise WebhookVerificationError(f"missing header {name}")


def sign_webhook(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The `v1,<base64>` signature of a message (what the sender puts in `webhook-signature`)."""
    message = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(_secret_key(secret), message, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def verify_webhook(
    secret: str,
    headers: Mapping[str, str],
    body: Union[bytes, str],
    now: Optional[float] = None,
    tolerance: int = TOLERANCE_SECS,
) -> Any:
    """Checks a webhook's signature and freshness; answers its parsed JSON payload.

    `body` must be the raw bytes received, not a re-serialisation. Raises
    `WebhookVerificationError` when the message must be dropped.
    """
    raw = body.encode() if isinstance(body, str) else bytes(body)
    msg_id = _header(headers, "webhook-id")
    timestamp_text = _header(headers, "webhook-timestamp").strip()
    signatures = _header(headers, "webhook-signature")
    if not timestamp_text.isdigit():
        raise WebhookVerificationError("malformed webhook-timestamp")
    timestamp = int(timestamp_text)
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance:
        raise WebhookVerificationError("webhook timestamp outside the tolerance")
    expected = sign_webhook(secret, msg_id, timestamp, raw).split(",", 1)[1]
    for candidate in signatures.split(" "):
        version, _, signature = candidate.partition(",")
        if version == "v1" and hmac.compare_digest(signature.encode(), expected.encode()):
            return json.loads(raw.decode("utf-8"))
    raise WebhookVerificationError("no signature matches")
