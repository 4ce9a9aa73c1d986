"""Signed calls to every merchant route of the LightSpeed API."""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, Callable, Optional, TypeVar

from . import models as m
from .errors import TransportError, error_from_response

T = TypeVar("T")


def sign_request(salt: str, timestamp: int, method: str, path: str, body: bytes) -> str:
    """hex(HMAC-SHA256(salt, "{timestamp}\\n{METHOD}\\n{path}\\n{raw body}"))."""
    message = f"{timestamp}\n{method.upper()}\n{path}\n".encode() + body
    return hmac.new(salt.encode(), message, hashlib.sha256).hexdigest()


def _query(params: dict[str, Any]) -> str:
    pairs = []
    for key, value in params.items():
        if value is None:
            continue
        if isinstance(value, bool):
            value = "true" if value else "false"
        pairs.append((key, str(value)))
    return "?" + urllib.parse.urlencode(pairs) if pairs else ""


def _segment(value: str) -> str:
    return urllib.parse.quote(str(value), safe="")


def _is_timeout(error: Optional[BaseException]) -> bool:
    if isinstance(error, (socket.timeout, TimeoutError)):
        return True
    return isinstance(error, urllib.error.URLError) and isinstance(
        error.reason, (socket.timeout, TimeoutError)
    )


class Client:
    """A merchant's signed client. Amounts are integer paise.

    `initiate_retries` is how many times a timed-out `initiate` is sent again with the same
    order id and body: the order id is the idempotency key, so a retry answers the payment the
    first attempt started and never makes a second one.
    """

    def __init__(
        self,
        base_url: str,
        client_key: str,
        client_salt: str,
        timeout: float = 10.0,
        initiate_retries: int = 2,
        clock: Callable[[], float] = time.time,
    ):
        self.base_url = base_url.rstrip("/")
        self.client_key = client_key
        self._salt = client_salt
        self.timeout = timeout
        self.initiate_retries = initiate_retries
        self._clock = clock

    def __repr__(self) -> str:
        return f"Client(base_url={self.base_url!r}, client_key={self.client_key!r})"

    # -- transport -------------------------------------------------------------------------

    def request(
        self, method: str, path: str, body: Optional[bytes] = None, accept: str = "application/json"
    ) -> tuple[int, dict[str, str], bytes]:
        """Sends one signed request; answers status, headers (lower-case names) and body.

        Raises the typed `ApiError` for a 4xx/5xx answer and `TransportError` for no answer.
        """
        raw = body or b""
        timestamp = int(self._clock())
        headers = {
            "x-client-key": self.client_key,
            "x-timestamp": str(timestamp),
            "x-signature": sign_request(self._salt, timestamp, method, path, raw),
            "accept": accept,
        }
        if body is not None:
            headers["content-type"] = "application/json"
        request = urllib.request.Request(
            self.base_url + path, data=body, headers=headers, method=method.upper()
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return response.status, _lower(response.headers), response.read()
        except urllib.error.HTTPError as error:
            raise error_from_response(error.code, error.read(), _lower(error.headers)) from None
        except OSError as error:  # URLError, timeouts and refused connections alike
            raise TransportError(f"{method.upper()} {path}: {error}") from error

    def _json(self, method: str, path: str, payload: Any = None) -> Any:
        body = None if payload is None else json.dumps(payload, separators=(",", ":")).encode()
        _, _, raw = self.request(method, path, body)
        return json.loads(raw) if raw else None

    def _typed(self, cls: type[T], method: str, path: str, payload: Any = None) -> T:
        return m.decode(cls, self._json(method, path, payload))

    # -- payments --------------------------------------------------------------------------

    def initiate(
        self,
        amount: int,
        order_id: str,
        currency: str = "INR",
        customer: Optional[dict[str, str]] = None,
        redirect_url: Optional[str] = None,
        notes: Optional[dict[str, str]] = None,
    ) -> m.Initiated:
        """Starts a payment; retries a timed-out attempt with the same order id and body."""
        payload: dict[str, Any] = {"amount": amount, "currency": currency, "order_id": order_id}
        optional = {"customer": customer, "redirect_url": redirect_url, "notes": notes}
        payload.update({key: value for key, value in optional.items() if value is not None})
        body = json.dumps(payload, separators=(",", ":")).encode()
        attempt = 0
        while True:
            try:
                _, _, raw = self.request("POST", "/payment/initiate", body)
                return m.decode(m.Initiated, json.loads(raw))
            except TransportError as error:
                if not _is_timeout(error.__cause__) or attempt >= self.initiate_retries:
                    raise
                attempt += 1

    def payment(self, transaction_id: str) -> m.Transaction:
        """A payment by id (`GET /transaction/{id}`)."""
        return self._typed(m.Transaction, "GET", f"/transaction/{_segment(transaction_id)}")

    def request_refund(
        self, transaction_id: str, amount: int, refund_id: str, reason: Optional[str] = None
    ) -> m.Refund:
        """Asks for a refund; `refund_id` is the merchant's idempotency key."""
        payload: dict[str, Any] = {"amount": amount, "refund_id": refund_id}
        if reason is not None:
            payload["reason"] = reason
        path = f"/payment/{_segment(transaction_id)}/refunds"
        return self._typed(m.Refund, "POST", path, payload)

    def refunds(self, transaction_id: str) -> m.RefundList:
        """A payment's refunds."""
        return self._typed(m.RefundList, "GET", f"/payment/{_segment(transaction_id)}/refunds")

    def refund(self, refund_id: str) -> m.Refund:
        """One refund by the merchant's refund id."""
        return self._typed(m.Refund, "GET", f"/refunds/{_segment(refund_id)}")

    # -- transactions, wallet, usage -------------------------------------------------------

    def transactions(self, **filters: Any) -> m.TransactionPage:
        """A page of payments, newest first. Filters: status, from, to, min_amount, max_amount,
        order_id, gateway_id, refunded, limit, cursor (`from` may be passed as `from_`)."""
        return self._typed(m.TransactionPage, "GET", "/transactions" + _query(_filters(filters)))

    def transactions_csv(self, **filters: Any) -> str:
        """Every matching payment as CSV (the same filters as `transactions`)."""
        path = "/transactions" + _query(_filters(filters))
        return self.request("GET", path, accept="text/csv")[2].decode("utf-8")

    def transaction(self, transaction_id: str) -> m.TransactionDetail:
        """A payment with its refunds and webhook deliveries."""
        path = f"/transactions/{_segment(transaction_id)}"
        return self._typed(m.TransactionDetail, "GET", path)

    def wallet(self) -> m.Wallet:
        """Commission due, thresholds and standing."""
        return self._typed(m.Wallet, "GET", "/wallet")

    def wallet_entries(self, limit: Optional[int] = None, cursor: Optional[str] = None) -> m.LedgerEntryPage:
        """A page of the commission ledger."""
        path = "/wallet/entries" + _query({"limit": limit, "cursor": cursor})
        return self._typed(m.LedgerEntryPage, "GET", path)

    def statement(self, month: str) -> m.Statement:
        """The statement of `month` (`yyyy-mm`)."""
        return self._typed(m.Statement, "GET", f"/statements/{_segment(month)}")

    def statement_text(self, month: str, media_type: str = "text/csv") -> str:
        """The statement of `month` as CSV or HTML (`media_type`)."""
        return self.request("GET", f"/statements/{_segment(month)}", accept=media_type)[2].decode()

    def invoices(self) -> dict:
        """Your monthly commission invoices, newest first (amounts in paise)."""
        return self._json("GET", "/invoices")

    def invoice(self, number: str) -> dict:
        """One of your invoices, e.g. `LS-2627-000042`, as JSON."""
        return self._json("GET", f"/invoices/{_segment(number)}")

    def invoice_pdf(self, number: str) -> bytes:
        """One of your invoices as its PDF."""
        return self.request("GET", f"/invoices/{_segment(number)}", accept="application/pdf")[2]

    def usage(self) -> m.Usage:
        """Payments by day, status and gateway, and WhatsApp usage, over 30 days."""
        return self._typed(m.Usage, "GET", "/usage")

    def whatsapp_usage(self) -> list[m.WhatsappUsage]:
        """WhatsApp messages by day and template."""
        return [m.decode(m.WhatsappUsage, row) for row in self._json("GET", "/merchant/whatsapp/usage")]

    # -- webhook endpoints and deliveries --------------------------------------------------

    def webhook_endpoints(self) -> list[m.WebhookEndpoint]:
        """Every webhook endpoint of the merchant."""
        return [m.decode(m.WebhookEndpoint, row) for row in self._json("GET", "/webhook-endpoints")]

    def create_webhook_endpoint(
        self, url: str, description: Optional[str] = None, event_types: Optional[list[str]] = None
    ) -> m.CreatedWebhookEndpoint:
        """Adds an endpoint; the answer holds its `whsec_` secret, shown this once."""
        payload = {"url": url, "description": description, "event_types": event_types}
        payload = {key: value for key, value in payload.items() if value is not None}
        return self._typed(m.CreatedWebhookEndpoint, "POST", "/webhook-endpoints", payload)

    def webhook_endpoint(self, endpoint_id: str) -> m.WebhookEndpoint:
        """One endpoint."""
        return self._typed(m.WebhookEndpoint, "GET", f"/webhook-endpoints/{_segment(endpoint_id)}")

    def update_webhook_endpoint(self, endpoint_id: str, **changes: Any) -> m.WebhookEndpoint:
        """Changes url, description, enabled or event_types."""
        path = f"/webhook-endpoints/{_segment(endpoint_id)}"
        return self._typed(m.WebhookEndpoint, "PATCH", path, changes)

    def delete_webhook_endpoint(self, endpoint_id: str) -> None:
        """Removes an endpoint."""
        self.request("DELETE", f"/webhook-endpoints/{_segment(endpoint_id)}")

    def rotate_webhook_secret(self, endpoint_id: str, grace_secs: Optional[int] = None) -> m.RotatedSecret:
        """A new secret; the previous one stays valid for `grace_secs`."""
        path = f"/webhook-endpoints/{_segment(endpoint_id)}/secret/rotate"
        payload = {} if grace_secs is None else {"grace_secs": grace_secs}
        return self._typed(m.RotatedSecret, "POST", path, payload)

    def send_test_event(self, endpoint_id: str, event_type: str) -> m.TestEvent:
        """Sends a signed sample event to the endpoint; answers the attempt."""
        path = f"/webhook-endpoints/{_segment(endpoint_id)}/test"
        return self._typed(m.TestEvent, "POST", path, {"event_type": event_type})

    def webhook_deliveries(self, **filters: Any) -> m.DeliveryPage:
        """A page of deliveries. Filters: endpoint_id, event_type, status, from, to, cursor, limit."""
        path = "/webhook-deliveries" + _query(_filters(filters))
        return self._typed(m.DeliveryPage, "GET", path)

    def webhook_delivery(self, delivery_id: str) -> m.DeliveryDetail:
        """One delivery with its payload and attempts."""
        return self._typed(m.DeliveryDetail, "GET", f"/webhook-deliveries/{_segment(delivery_id)}")

    def resend_webhook_delivery(self, delivery_id: str) -> m.ResentDelivery:
        """Queues a given-up delivery again."""
        path = f"/webhook-deliveries/{_segment(delivery_id)}/resend"
        return self._typed(m.ResentDelivery, "POST", path)


def _filters(filters: dict[str, Any]) -> dict[str, Any]:
    # `from` is a Python keyword: callers pass `from_`.
    return {key.rstrip("_"): value for key, value in filters.items()}


def _lower(headers: Any) -> dict[str, str]:
    return {key.lower(): value for key, value in headers.items()} if headers else {}
