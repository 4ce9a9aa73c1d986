"""Unit tests: signing vectors, webhook verification, typed errors and the initiate retry,
against a local fake server standing in for the API."""

import http.server
import json
import socket
import threading
import time
import unittest

from lightspeed_client import (
    Client,
    ConflictError,
    TransportError,
    ValidationError,
    WebhookVerificationError,
    sign_request,
    verify_webhook,
)
from lightspeed_client.models import TransactionDetail, Usage, decode
from lightspeed_client.webhooks import sign_webhook

# The Standard Webhooks specification's own example.
SW_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SW_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
SW_TIMESTAMP = 1614265330
SW_BODY = b'{"test": 2432232314}'
SW_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def sw_headers(signature=SW_SIGNATURE, timestamp=SW_TIMESTAMP):
    return {"Webhook-Id": SW_ID, "Webhook-Timestamp": str(timestamp), "Webhook-Signature": signature}


class Signing(unittest.TestCase):
    def test_the_integration_guide_worked_example(self):
        body = (
            b'{"amount":49900,"currency":"INR","order_id":"A-1001","customer":{"name":"Asha Verma",'
            b'"email":"asha@example.com","phone":"919867800451"},"redirect_url":'
            b'"https://shop.example.com/orders/A-1001","notes":{"cart":"c_42"}}'
        )
        salt = "cs_q8ZtV2mLr5XwK9bN3cHj7PfD1sGy4TaE6uWn0RkQxMv"
        self.assertEqual(
            sign_request(salt, 1796572800, "post", "/payment/initiate", body),
            "7fb379700468bfb6ca76059962a4ae7cfc2e670629b4a79d95c3c37bcfc112ca",
        )
        self.assertEqual(
            sign_request(salt, 1796572800, "GET", "/transaction/01a24c1a-960a-746b-9707-2fe7a2dc9cce", b""),
            "84fc7030409b4c8334f3bb33dbe8b55085bdc96dcc6cf6ad96f73b1ec1a5f76d",
        )


class StandardWebhooks(unittest.TestCase):
    def test_the_specification_vector_signs_and_verifies(self):
        self.assertEqual(sign_webhook(SW_SECRET, SW_ID, SW_TIMESTAMP, SW_BODY), SW_SIGNATURE)
        payload = verify_webhook(SW_SECRET, sw_headers(), SW_BODY, now=SW_TIMESTAMP + 299)
        self.assertEqual(payload, {"test": 2432232314})

    def test_any_of_several_signatures_verifies(self):
        headers = sw_headers("v1,bm90LXRoaXMtb25l v2,xyz " + SW_SIGNATURE)
        verify_webhook(SW_SECRET, headers, SW_BODY, now=SW_TIMESTAMP)

    def test_refusals(self):
        cases = {
            "stale": (sw_headers(), SW_BODY, SW_TIMESTAMP + 301),
            "future": (sw_headers(), SW_BODY, SW_TIMESTAMP - 301),
            "tampered body": (sw_headers(), b'{"test": 2432232315}', SW_TIMESTAMP),
            "other timestamp": (sw_headers(timestamp=SW_TIMESTAMP + 1), SW_BODY, SW_TIMESTAMP),
            "wrong version": (sw_headers("v2," + SW_SIGNATURE[3:]), SW_BODY, SW_TIMESTAMP),
            "missing header": ({"webhook-id": SW_ID}, SW_BODY, SW_TIMESTAMP),
        }
        for name, (headers, body, now) in cases.items():
            with self.subTest(name), self.assertRaises(WebhookVerificationError):
                verify_webhook(SW_SECRET, headers, body, now=now)
        with self.assertRaises(WebhookVerificationError):
            verify_webhook("whsec_c2VjcmV0", sw_headers(), SW_BODY, now=SW_TIMESTAMP)


class Models(unittest.TestCase):
    def test_nested_answers_and_keyword_fields_decode(self):
        usage = decode(Usage, {"from": "2026-11-01", "to": "2026-11-30", "payments": [], "whatsapp": []})
        self.assertEqual(usage.from_, "2026-11-01")
        refund = {
            "refund_id": "R1", "transaction_id": "T1", "amount": 100, "reason": "", "status": "pending",
            "commission_treatment": "reverse", "commission_reversed": 0, "created_at": "x", "updated_at": "x",
        }
        detail = decode(TransactionDetail, {
            "transaction_id": "T1", "order_id": "O1", "amount": 500, "currency": "INR",
            "status": "succeeded", "gateway_id": "G", "refunded": 100, "created_at": "x",
            "checkout_url": "u", "refundable": 400, "refunds": [refund], "webhook_deliveries": [],
            "added_later": True,
        })
        self.assertEqual(detail.refunds[0].amount, 100)
        self.assertEqual(detail.refundable, 400)


class FakeApi(http.server.BaseHTTPRequestHandler):
    """Answers by path; the first initiate is held past the client's timeout."""

    calls = []

    def log_message(self, *args):
        pass

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        FakeApi.calls.append((self.path, {k.lower(): v for k, v in self.headers.items()}, body))
        if self.path == "/payment/initiate":
            if len([c for c in FakeApi.calls if c[0] == self.path]) == 1:
                time.sleep(0.6)
            self.answer(201, "application/json", {"transaction_id": "T1", "status": "created", "checkout_url": "u"})
        else:
            self.answer(409, "application/problem+json", {
                "type": "about:blank", "title": "Conflict", "status": 409,
                "code": "PAYMENT_NOT_REFUNDABLE", "detail": "payment is created",
            })

    def do_GET(self):
        self.answer(422, "application/problem+json", {
            "type": "about:blank", "title": "Unprocessable Entity", "status": 422,
            "code": "INVALID_FIELD", "detail": "bad limit", "field": "limit",
        })

    def answer(self, status, content_type, payload):
        data = json.dumps(payload).encode()
        try:
            self.send_response(status)
            self.send_header("content-type", content_type)
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up on this attempt


class AgainstAFakeServer(unittest.TestCase):
    def setUp(self):
        FakeApi.calls = []
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), FakeApi)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.client = Client(url, "ck_test", "cs_test", timeout=0.3)

    def tearDown(self):
        self.server.shutdown()
        self.server.server_close()

    def test_a_timed_out_initiate_is_sent_again_with_the_same_body_signed_again(self):
        initiated = self.client.initiate(amount=49900, order_id="ORD-1")
        self.assertEqual(initiated.transaction_id, "T1")
        bodies = [body for path, _, body in FakeApi.calls if path == "/payment/initiate"]
        self.assertEqual(len(bodies), 2)
        self.assertEqual(bodies[0], bodies[1])
        self.assertEqual(json.loads(bodies[0])["order_id"], "ORD-1")
        headers = FakeApi.calls[-1][1]
        self.assertEqual(headers["x-client-key"], "ck_test")
        expected = sign_request("cs_test", int(headers["x-timestamp"]), "POST", "/payment/initiate", bodies[1])
        self.assertEqual(headers["x-signature"], expected)

    def test_no_retry_left_is_a_transport_error(self):
        self.client.initiate_retries = 0
        with self.assertRaises(TransportError):
            self.client.initiate(amount=49900, order_id="ORD-1")

    def test_a_refused_connection_is_a_transport_error(self):
        closed = socket.socket()
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
        closed.close()
        client = Client(f"http://127.0.0.1:{port}", "ck_test", "cs_test", timeout=0.3)
        with self.assertRaises(TransportError):
            client.initiate(amount=49900, order_id="ORD-1")
        with self.assertRaises(TransportError):
            client.wallet()

    def test_problem_documents_become_typed_errors(self):
        with self.assertRaises(ConflictError) as refused:
            self.client.request_refund("T1", 100, "R1")
        self.assertEqual((refused.exception.status, refused.exception.code), (409, "PAYMENT_NOT_REFUNDABLE"))
        with self.assertRaises(ValidationError) as invalid:
            self.client.transactions(limit=0)
        self.assertEqual((invalid.exception.code, invalid.exception.field), ("INVALID_FIELD", "limit"))


if __name__ == "__main__":
    unittest.main()
