"""Typed errors: one class per kind of refusal, built from the server's problem+json answer."""

from __future__ import annotations

import json
from typing import Any, Optional


class ApiError(Exception):
    """The server refused the request; `code` is the stable machine-readable reason."""

    def __init__(self, status: int, problem: dict[str, Any], headers: Optional[dict[str, str]] = None):
        self.status = status
        self.problem = problem
        self.code: str = str(problem.get("code", "UNKNOWN"))
        self.title: str = str(problem.get("title", ""))
        self.detail: str = str(problem.get("detail", ""))
        self.field: Optional[str] = problem.get("field")
        self.errors: list[dict[str, Any]] = problem.get("errors") or []
        self.transaction_id: Optional[str] = problem.get("transaction_id")
        self.headers = headers or {}
        super().__init__(f"{status} {self.code}: {self.detail}")


class AuthenticationError(ApiError):
    """401: missing, stale or wrong signature, or an unknown client key."""


class PaymentRequiredError(ApiError):
    """402: the merchant is suspended until its commission due is paid."""


class NotFoundError(ApiError):
    """404: no such resource for this merchant (another merchant's ids are 404 too)."""


class ConflictError(ApiError):
    """409: the request conflicts with the resource's state (order id reused, not refundable…)."""


class ValidationError(ApiError):
    """400, 413, 415 or 422: the request itself is wrong; `field` names the culprit when known."""


class RateLimitedError(ApiError):
    """429: too many requests; `retry_after` is the server's advice in seconds."""

    @property
    def retry_after(self) -> Optional[int]:
        value = self.headers.get("retry-after")
        return int(value) if value and value.isdigit() else None


class ServerError(ApiError):
    """5xx: the server could not answer now; the request may be retried later."""


class TransportError(Exception):
    """The server could not be reached or did not answer in time (after any retries)."""


class WebhookVerificationError(Exception):
    """A webhook's headers or signature do not verify; the message must be dropped."""


_BY_STATUS = {
    400: ValidationError,
    401: AuthenticationError,
    402: PaymentRequiredError,
    404: NotFoundError,
    409: ConflictError,
    413: ValidationError,
    415: ValidationError,
    422: ValidationError,
    429: RateLimitedError,
}


def error_from_response(status: int, body: bytes, headers: dict[str, str]) -> ApiError:
    """The typed error for a refused request, from its problem+json body (or a bare status)."""
    try:
        problem = json.loads(body.decode("utf-8")) if body else {}
        if not isinstance(problem, dict):
            problem = {}
    except (UnicodeDecodeError, json.JSONDecodeError):
        problem = {}
    problem.setdefault("status", status)
    problem.setdefault("detail", body[:200].decode("utf-8", "replace"))
    kind = _BY_STATUS.get(status) or (ServerError if status >= 500 else ApiError)
    return kind(status, problem, headers)
