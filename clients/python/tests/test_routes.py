"""Every merchant route of the OpenAPI document has a client method that calls it, signed."""

import http.server
import json
import re
import threading
import unittest
from pathlib import Path

from lightspeed_client import Client, NotFoundError, sign_request

OPENAPI = Path(__file__).resolve().parents[3] / "api" / "openapi.json"


def merchant_routes():
    document = json.loads(OPENAPI.read_text())
    routes = set()
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            security = operation.get("security", []) if isinstance(operation, dict) else []
            if any("merchant_signature" in scheme for scheme in security):
                routes.add((method.upper(), re.sub(r"\{[^}]+\}", "{}", path)))
    return routes


class Recorder(http.server.BaseHTTPRequestHandler):
    """Records each request and answers 404 with a problem document."""

    calls = []

    def log_message(self, *args):
        pass

    def handle_one(self):
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        headers = {k.lower(): v for k, v in self.headers.items()}
        Recorder.calls.append((self.command, self.path, headers, body))
        data = json.dumps({"type": "about:blank", "title": "Not Found", "status": 404,
                           "code": "NOT_HERE", "detail": "recorded"}).encode()
        self.send_response(404)
        self.send_header("content-type", "application/problem+json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PATCH = do_DELETE = handle_one


class EveryRoute(unittest.TestCase):
    def test_each_merchant_route_is_called_by_a_method_and_signed(self):
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        self.addCleanup(server.server_close)
        self.addCleanup(server.shutdown)
        client = Client(f"http://127.0.0.1:{server.server_address[1]}", "ck_test", "cs_test")
        calls = [
            lambda: client.initiate(amount=1, order_id="O"),
            lambda: client.payment("X1"),
            lambda: client.request_refund("X1", 1, "R"),
            lambda: client.refunds("X1"),
            lambda: client.refund("X1"),
            lambda: client.transactions(status="created", limit=2),
            lambda: client.transactions_csv(),
            lambda: client.transaction("X1"),
            lambda: client.wallet(),
            lambda: client.wallet_entries(limit=1),
            lambda: client.statement("X1"),
            lambda: client.statement_text("X1"),
            lambda: client.invoices(),
            lambda: client.invoice("X1"),
            lambda: client.invoice_pdf("X1"),
            lambda: client.usage(),
            lambda: client.whatsapp_usage(),
            lambda: client.webhook_endpoints(),
            lambda: client.create_webhook_endpoint("https://shop.example/hooks"),
            lambda: client.webhook_endpoint("X1"),
            lambda: client.update_webhook_endpoint("X1", enabled=False),
            lambda: client.delete_webhook_endpoint("X1"),
            lambda: client.rotate_webhook_secret("X1"),
            lambda: client.send_test_event("X1", "payment.succeeded"),
            lambda: client.webhook_deliveries(status="pending"),
            lambda: client.webhook_delivery("X1"),
            lambda: client.resend_webhook_delivery("X1"),
        ]
        Recorder.calls = []
        for call in calls:
            with self.assertRaises(NotFoundError):
                call()
        called = {(method, re.sub(r"/X1(?=/|$)", "/{}", path.split("?")[0]))
                  for method, path, _, _ in Recorder.calls}
        self.assertEqual(called, merchant_routes())
        for method, path, headers, body in Recorder.calls:
            expected = sign_request("cs_test", int(headers["x-timestamp"]), method, path, body)
            self.assertEqual(headers["x-signature"], expected, path)


if __name__ == "__main__":
    unittest.main()
