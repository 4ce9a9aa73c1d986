"""The API's answers as typed dataclasses. Amounts are integer paise; times are RFC 3339 strings.

Fields the server adds later are ignored, so an older client keeps working.
"""

from __future__ import annotations

import dataclasses
import sys
import typing
from dataclasses import dataclass, field
from typing import Any, Optional, TypeVar

T = TypeVar("T")

__all__ = [
    "Initiated",
    "Transaction",
    "Refund",
    "RefundList",
    "DeliveryItem",
    "TransactionDetail",
    "TransactionItem",
    "TransactionPage",
    "Wallet",
    "LedgerEntry",
    "LedgerEntryPage",
    "StatementEntry",
    "Statement",
    "PaymentUsage",
    "WhatsappUsage",
    "Usage",
    "WebhookEndpoint",
    "CreatedWebhookEndpoint",
    "RotatedSecret",
    "TestEvent",
    "Delivery",
    "DeliveryPage",
    "Attempt",
    "DeliveryDetail",
    "ResentDelivery",
    "decode",
]


def decode(cls: type[T], data: Any) -> T:
    """Builds `cls` from the JSON object `data`, nested dataclasses and lists included."""
    hints = typing.get_type_hints(cls, vars(sys.modules[__name__]))
    values = {}
    for item in dataclasses.fields(cls):  # type: ignore[arg-type]
        # A field named after a Python keyword carries a trailing underscore (`from_`).
        key = item.name.rstrip("_")
        if key in data:
            values[item.name] = _convert(hints[item.name], data[key])
    return cls(**values)


def _convert(hint: Any, value: Any) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if value is None:
        return None
    if origin is typing.Union:
        inner = [arg for arg in args if arg is not type(None)]
        return _convert(inner[0], value) if len(inner) == 1 else value
    if origin is list:
        return [_convert(args[0], element) for element in value]
    if dataclasses.is_dataclass(hint):
        return decode(hint, value)
    return value


@dataclass
class Initiated:
    """The answer to `POST /payment/initiate`: where to send the payer."""

    transaction_id: str
    status: str
    checkout_url: str


@dataclass
class Transaction:
    """A payment as `GET /transaction/{id}` answers it."""

    transaction_id: str
    order_id: str
    amount: int
    currency: str
    status: str
    gateway_id: str
    refunded: int
    created_at: str
    checkout_url: str
    commission: Optional[int] = None
    failure_code: Optional[str] = None
    failure_reason: Optional[str] = None
    psp_order_id: Optional[str] = None
    psp_payment_id: Optional[str] = None


@dataclass
class Refund:
    """One refund of a payment."""

    refund_id: str
    transaction_id: str
    amount: int
    reason: str
    status: str
    commission_treatment: str
    commission_reversed: int
    created_at: str
    updated_at: str
    failure_code: Optional[str] = None
    failure_reason: Optional[str] = None
    psp_refund_id: Optional[str] = None


@dataclass
class RefundList:
    """A payment's refunds and what remains refundable."""

    transaction_id: str
    amount: int
    refunded: int
    refundable: int
    refunds: list[Refund]


@dataclass
class DeliveryItem:
    """A webhook delivery about a payment, as listed in the payment's detail."""

    delivery_id: str
    event_type: str
    endpoint_url: str
    status: str
    attempts: int
    queued_at: str
    delivered_at: Optional[str] = None
    given_up_at: Optional[str] = None
    last_error: Optional[str] = None
    last_status_code: Optional[int] = None
    next_attempt_at: Optional[str] = None


@dataclass
class TransactionDetail(Transaction):
    """A payment with its refunds and webhook deliveries (`GET /transactions/{id}`)."""

    refundable: int = 0
    refunds: list[Refund] = field(default_factory=list)
    webhook_deliveries: list[DeliveryItem] = field(default_factory=list)


@dataclass
class TransactionItem:
    """One payment in `GET /transactions`."""

    transaction_id: str
    order_id: str
    amount: int
    currency: str
    status: str
    partially_refunded: bool
    refunded: int
    refunds: int
    open_refunds: int
    gateway_id: str
    attempts: int
    created_at: str
    updated_at: str
    commission: Optional[int] = None
    failed_at: Optional[str] = None
    failure_code: Optional[str] = None
    failure_reason: Optional[str] = None
    psp_order_id: Optional[str] = None
    psp_payment_id: Optional[str] = None
    succeeded_at: Optional[str] = None


@dataclass
class TransactionPage:
    """A page of payments, newest first; pass `next_cursor` back for the next page."""

    items: list[TransactionItem]
    next_cursor: Optional[str] = None


@dataclass
class Wallet:
    """What the merchant owes in commission, and its standing."""

    balance_due: int
    available: int
    warn_at: int
    suspend_at: int
    standing: str
    commission_this_month: int
    commission_reversed_this_month: int
    last_payout: Optional[int] = None
    last_payout_at: Optional[str] = None


@dataclass
class LedgerEntry:
    """One fact of the commission ledger."""

    entry_type: str
    source_id: str
    merchant_id: str
    amount_paise: int
    balance_effect_paise: int
    occurred_at: str
    log_position: int
    detail: Optional[str] = None
    fee_bps: Optional[int] = None
    payment_amount_paise: Optional[int] = None
    reference: Optional[str] = None


@dataclass
class LedgerEntryPage:
    """A page of wallet entries."""

    items: list[LedgerEntry]
    next_cursor: Optional[str] = None


@dataclass
class StatementEntry:
    """One line of a monthly statement."""

    at: str
    kind: str
    reference: str
    amount_paise: int
    balance_effect_paise: int


@dataclass
class Statement:
    """A month's commission statement."""

    merchant_id: str
    company_name: str
    month: str
    opening_balance_paise: int
    commission_accrued_paise: int
    commissions: int
    commission_reversed_paise: int
    payouts_paise: int
    reversals_paise: int
    settlements_paise: int
    closing_balance_paise: int
    pending_payouts_paise: int
    entries: list[StatementEntry]


@dataclass
class PaymentUsage:
    """Payments of one day, gateway and status."""

    day: str
    gateway_id: str
    status: str
    payments: int
    volume: int


@dataclass
class WhatsappUsage:
    """WhatsApp messages of one day and template."""

    merchant_id: str
    day: str
    template: str
    queued: int
    sent: int
    failed: int


@dataclass
class Usage:
    """The last 30 days of payments and WhatsApp messages."""

    to: str
    payments: list[PaymentUsage]
    whatsapp: list[WhatsappUsage]
    from_: str = ""


@dataclass
class WebhookEndpoint:
    """Where webhooks go, and which event types."""

    id: str
    url: str
    description: str
    enabled: bool
    event_types: list[str]
    created_at: str
    disabled_at: Optional[str] = None
    previous_secret_valid_until: Optional[str] = None


@dataclass
class CreatedWebhookEndpoint:
    """A new endpoint and its `whsec_` secret (shown this once)."""

    endpoint: WebhookEndpoint
    secret: str


@dataclass
class RotatedSecret:
    """An endpoint's new secret (shown this once) and the previous one's grace."""

    secret: str
    previous_valid_until: Optional[str] = None


@dataclass
class TestEvent:
    """The attempt of a test event: whether the endpoint took it, and how fast."""

    __test__ = False  # not a unittest case

    delivery_id: str
    event_type: str
    delivered: bool
    latency_ms: int
    status_code: Optional[int] = None
    response_excerpt: Optional[str] = None
    error: Optional[str] = None


@dataclass
class Delivery:
    """One webhook delivery in the delivery log."""

    id: str
    endpoint_id: str
    endpoint_url: str
    event_type: str
    transaction_id: Optional[str]
    status: str
    attempts: int
    queued_at: str
    test: bool = False
    delivered_at: Optional[str] = None
    given_up_at: Optional[str] = None
    last_error: Optional[str] = None
    last_status_code: Optional[int] = None
    next_attempt_at: Optional[str] = None


@dataclass
class DeliveryPage:
    """A page of deliveries, newest first."""

    data: list[Delivery]
    next_cursor: Optional[str] = None


@dataclass
class Attempt:
    """One attempt of a delivery."""

    attempt: int
    duration_ms: int
    attempted_at: str
    status_code: Optional[int] = None
    response_excerpt: Optional[str] = None
    error: Optional[str] = None


@dataclass
class DeliveryDetail:
    """A delivery with its payload and every attempt."""

    delivery: Delivery
    payload: Any
    attempts: list[Attempt]


@dataclass
class ResentDelivery:
    """A delivery queued again."""

    id: str
    status: str
