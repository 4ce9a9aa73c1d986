"""Client for the LightSpeed merchant API (standard library only)."""

from .client import Client, sign_request
from .errors import (
    ApiError,
    AuthenticationError,
    ConflictError,
    NotFoundError,
    PaymentRequiredError,
    RateLimitedError,
    ServerError,
    TransportError,
    ValidationError,
    WebhookVerificationError,
)
from .models import *  # noqa: F401,F403 - the typed answers are part of the package's surface
from .webhooks import verify_webhook

__all__ = [
    "Client",
    "sign_request",
    "verify_webhook",
    "ApiError",
    "AuthenticationError",
    "ConflictError",
    "NotFoundError",
    "PaymentRequiredError",
    "RateLimitedError",
    "ServerError",
    "TransportError",
    "ValidationError",
    "WebhookVerificationError",
]
