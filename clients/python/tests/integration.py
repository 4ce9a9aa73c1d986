"""Integration run of the Python client against a real LightSpeed API.

Started by the Rust test `clients::the_python_and_typescript_clients_work_against_the_real_api`
with LIGHTSPEED_URL, LIGHTSPEED_CLIENT_KEY, LIGHTSPEED_CLIENT_SALT and LIGHTSPEED_SEEDED_ORDER
(the order id of a payment the test made and projected). Exits non-zero on the first failure.
"""

import datetime
import http.server
import os
import sys
import threading
import time
import urllib.request
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from lightspeed_client import (  # noqa: E402 - after the path is set
    AuthenticationError,
    Client,
    ConflictError,
    NotFoundError,
    Statement,
    TransactionPage,
    ValidationError,
    Wallet,
    verify_webhook,
)

URL = os.environ["LIGHTSPEED_URL"]
KEY = os.environ["LIGHTSPEED_CLIENT_KEY"]
SALT = os.environ["LIGHTSPEED_CLIENT_SALT"]
SEEDED_ORDER = os.environ["LIGHTSPEED_SEEDED_ORDER"]


def check(condition, message):
    if not condition:
        raise AssertionError(message)


def expect(kind, code, call):
    try:
        call()
    except kind as error:
        check(error.code == code, f"expected {code}, got {error.code}: {error.detail}")
        return error
    raise AssertionError(f"expected {kind.__name__} {code}, got an answer")


class SlowFirstInitiate(http.server.BaseHTTPRequestHandler):
    """A proxy to the API that holds the first initiate's answer past the client's timeout
    (the API has made the payment by then), and passes everything else straight through."""

    answers = []

    def log_message(self, *args):
        pass

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        forwarded = {k: v for k, v in self.headers.items() if k.lower().startswith(("x-", "content-type"))}
        request = urllib.request.Request(URL + self.path, data=body, headers=forwarded, method="POST")
        with urllib.request.urlopen(request) as response:
            status, data = response.status, response.read()
        SlowFirstInitiate.answers.append(data)
        if len(SlowFirstInitiate.answers) == 1:
            time.sleep(1.5)
        try:
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up on this attempt, as intended


def serve(handler):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


def initiate_retried_after_a_timeout():
    proxy, proxy_url = serve(SlowFirstInitiate)
    slow = Client(proxy_url, KEY, SALT, timeout=0.5, initiate_retries=2)
    order_id = f"PY-{uuid.uuid4().hex[:12]}"
    initiated = slow.initiate(amount=49900, order_id=order_id, customer={"name": "Asha"})
    proxy.shutdown()
    check(len(SlowFirstInitiate.answers) == 2, f"two attempts reached the API: {SlowFirstInitiate.answers}")
    check(SlowFirstInitiate.answers[0] == SlowFirstInitiate.answers[1], "the retry answered the same payment")
    check(initiated.transaction_id in SlowFirstInitiate.answers[0].decode(), "the client answers that payment")
    check(initiated.status == "created", initiated.status)
    return initiated, order_id


def payments(client):
    initiated, order_id = initiate_retried_after_a_timeout()
    again = client.initiate(amount=49900, order_id=order_id, customer={"name": "Asha"})
    check(again.transaction_id == initiated.transaction_id, "a replay answers the same payment")
    reused = expect(
        ConflictError, "ORDER_ID_REUSED", lambda: client.initiate(amount=50000, order_id=order_id)
    )
    check(reused.transaction_id == initiated.transaction_id, "the conflict names the payment")
    payment = client.payment(initiated.transaction_id)
    check((payment.amount, payment.order_id, payment.status) == (49900, order_id, "created"), str(payment))
    expect(NotFoundError, "TRANSACTION_NOT_FOUND", lambda: client.payment(str(uuid.uuid4())))
    refused = expect(
        ConflictError,
        "PAYMENT_NOT_REFUNDABLE",
        lambda: client.request_refund(initiated.transaction_id, 100, "RF-PY-1"),
    )
    check(refused.status == 409, str(refused.status))
    refunds = client.refunds(initiated.transaction_id)
    check(refunds.refunds == [] and refunds.refunded == 0, str(refunds))
    expect(NotFoundError, "REFUND_NOT_FOUND", lambda: client.refund("RF-PY-1"))
    invalid = expect(ValidationError, "INVALID_FIELD", lambda: client.initiate(amount=0, order_id="PY-ZERO"))
    check(invalid.status == 422, str(invalid.status))


def reads(client):
    page = client.transactions()
    check(isinstance(page, TransactionPage), str(page))
    check(SEEDED_ORDER in [item.order_id for item in page.items], f"seeded payment listed: {page}")
    one = client.transactions(order_id=SEEDED_ORDER, limit=5)
    check([item.order_id for item in one.items] == [SEEDED_ORDER], str(one))
    detail = client.transaction(one.items[0].transaction_id)
    check(detail.order_id == SEEDED_ORDER and isinstance(detail.refunds, list), str(detail))
    csv = client.transactions_csv(order_id=SEEDED_ORDER)
    lines = csv.strip().splitlines()
    check(lines[0].startswith("transaction_id,order_id,"), lines[0])
    check(len(lines) == 2 and SEEDED_ORDER in lines[1], csv)
    wallet = client.wallet()
    check(isinstance(wallet, Wallet) and wallet.standing == "active", str(wallet))
    client.wallet_entries(limit=10)
    month = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m")
    check(isinstance(client.statement(month), Statement), "statement")
    usage = client.usage()
    check(isinstance(usage.payments, list) and usage.from_, str(usage))
    client.whatsapp_usage()
    bad_limit = expect(ValidationError, "INVALID_FIELD", lambda: client.transactions(limit="many"))
    check(bad_limit.status == 422 and "limit" in bad_limit.detail, str(bad_limit))


class Receiver(http.server.BaseHTTPRequestHandler):
    """The merchant's webhook endpoint: verifies what arrives with the client's verifier."""

    secret = ""
    verified = []

    def log_message(self, *args):
        pass

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        payload = verify_webhook(Receiver.secret, dict(self.headers.items()), body)
        Receiver.verified.append(payload)
        self.send_response(200)
        self.send_header("content-length", "2")
        self.end_headers()
        self.wfile.write(b"ok")


def webhooks(client):
    receiver, receiver_url = serve(Receiver)
    created = client.create_webhook_endpoint(
        receiver_url + "/hooks", description="python client", event_types=["payment.*"]
    )
    check(created.secret.startswith("whsec_"), "a whsec_ secret")
    Receiver.secret = created.secret
    endpoint_id = created.endpoint.id
    check(endpoint_id in [e.id for e in client.webhook_endpoints()], "listed")
    check(client.webhook_endpoint(endpoint_id).event_types == ["payment.*"], "filter kept")
    attempt = client.send_test_event(endpoint_id, "payment.succeeded")
    check(attempt.delivered and attempt.status_code == 200, str(attempt))
    check(len(Receiver.verified) == 1, f"one verified event: {Receiver.verified}")
    check(Receiver.verified[0]["type"] == "payment.succeeded", str(Receiver.verified[0]))
    rotated = client.rotate_webhook_secret(endpoint_id, grace_secs=60)
    Receiver.secret = rotated.secret
    client.send_test_event(endpoint_id, "payment.failed")
    check([p["type"] for p in Receiver.verified][-1] == "payment.failed", "verified with the new secret")
    updated = client.update_webhook_endpoint(endpoint_id, enabled=False, description="off")
    check(not updated.enabled and updated.description == "off", str(updated))
    client.webhook_deliveries(endpoint_id=endpoint_id, limit=5)
    expect(NotFoundError, "WEBHOOK_DELIVERY_NOT_FOUND", lambda: client.webhook_delivery(str(uuid.uuid4())))
    expect(NotFoundError, "WEBHOOK_DELIVERY_NOT_FOUND", lambda: client.resend_webhook_delivery(str(uuid.uuid4())))
    client.delete_webhook_endpoint(endpoint_id)
    expect(NotFoundError, "WEBHOOK_ENDPOINT_NOT_FOUND", lambda: client.webhook_endpoint(endpoint_id))
    receiver.shutdown()


def main():
    client = Client(URL, KEY, SALT)
    expect(AuthenticationError, "BAD_SIGNATURE", lambda: Client(URL, KEY, SALT + "x").wallet())
    payments(client)
    reads(client)
    webhooks(client)
    print("python client: every check passed")


if __name__ == "__main__":
    main()
