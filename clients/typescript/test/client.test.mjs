// Unit tests: signing vectors, Standard Webhooks verification, typed errors and the initiate
// retry, against a local fake server standing in for the API.

import assert from "node:assert/strict";
import { createServer } from "node:http";
import { test } from "node:test";

import {
  Client,
  ConflictError,
  TransportError,
  ValidationError,
  WebhookVerificationError,
  signRequest,
  signWebhook,
  verifyWebhook,
} from "../src/index.js";

// The Standard Webhooks specification's own example.
const SW = {
  secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
  id: "msg_p5jXN8AQM9LWM0D4loKWxJek",
  timestamp: 1614265330,
  body: '{"test": 2432232314}',
  signature: "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
};
const swHeaders = (signature = SW.signature, timestamp = SW.timestamp) => ({
  "Webhook-Id": SW.id,
  "Webhook-Timestamp": String(timestamp),
  "Webhook-Signature": signature,
});

test("the integration guide's worked example signs alike", () => {
  const salt = "cs_q8ZtV2mLr5XwK9bN3cHj7PfD1sGy4TaE6uWn0RkQxMv";
  const body =
    '{"amount":49900,"currency":"INR","order_id":"A-1001","customer":{"name":"Asha Verma","email":"asha@example.com","phone":"919867800451"},"redirect_url":"https://shop.example.com/orders/A-1001","notes":{"cart":"c_42"}}';
  assert.equal(
    signRequest(salt, 1796572800, "post", "/payment/initiate", body),
    "7fb379700468bfb6ca76059962a4ae7cfc2e670629b4a79d95c3c37bcfc112ca",
  );
  assert.equal(
    signRequest(salt, 1796572800, "GET", "/transaction/01a24c1a-960a-746b-9707-2fe7a2dc9cce"),
    "84fc7030409b4c8334f3bb33dbe8b55085bdc96dcc6cf6ad96f73b1ec1a5f76d",
  );
});

test("the Standard Webhooks vector signs and verifies", () => {
  assert.equal(signWebhook(SW.secret, SW.id, SW.timestamp, SW.body), SW.signature);
  assert.deepEqual(verifyWebhook(SW.secret, swHeaders(), SW.body, { now: SW.timestamp + 299 }), { test: 2432232314 });
  const several = swHeaders(`v1,bm90LXRoaXMtb25l v2,xyz ${SW.signature}`);
  verifyWebhook(SW.secret, new Headers(several), Buffer.from(SW.body), { now: SW.timestamp });
});

test("a stale, tampered or unsigned webhook is refused", () => {
  const cases = [
    [swHeaders(), SW.body, SW.timestamp + 301],
    [swHeaders(), SW.body, SW.timestamp - 301],
    [swHeaders(), '{"test": 2432232315}', SW.timestamp],
    [swHeaders(SW.signature, SW.timestamp + 1), SW.body, SW.timestamp],
    [swHeaders(`v2,${SW.signature.slice(3)}`), SW.body, SW.timestamp],
    [{ "webhook-id": SW.id }, SW.body, SW.timestamp],
  ];
  for (const [headers, body, now] of cases) {
    assert.throws(() => verifyWebhook(SW.secret, headers, body, { now }), WebhookVerificationError);
  }
  assert.throws(() => verifyWebhook("whsec_c2VjcmV0", swHeaders(), SW.body, { now: SW.timestamp }), WebhookVerificationError);
});

/** A fake API: holds the first initiate past the client's timeout, refuses refunds and lists. */
async function fakeApi() {
  const calls = [];
  const server = createServer((request, response) => {
    const chunks = [];
    request.on("data", (chunk) => chunks.push(chunk));
    request.on("end", () => {
      const body = Buffer.concat(chunks).toString();
      calls.push({ path: request.url, headers: request.headers, body });
      const answer = (status, type, payload) => {
        if (response.destroyed) return;
        response.writeHead(status, { "content-type": type });
        response.end(JSON.stringify(payload));
      };
      if (request.url === "/payment/initiate") {
        const first = calls.filter((call) => call.path === request.url).length === 1;
        const created = { transaction_id: "T1", status: "created", checkout_url: "u" };
        setTimeout(() => answer(201, "application/json", created), first ? 600 : 0);
      } else if (request.method === "POST") {
        answer(409, "application/problem+json", {
          type: "about:blank", title: "Conflict", status: 409, code: "PAYMENT_NOT_REFUNDABLE", detail: "payment is created",
        });
      } else {
        answer(422, "application/problem+json", {
          type: "about:blank", title: "Unprocessable Entity", status: 422, code: "INVALID_FIELD", detail: "bad", field: "limit",
        });
      }
    });
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  const client = new Client({
    baseUrl: `http://127.0.0.1:${server.address().port}`, clientKey: "ck_test", clientSalt: "cs_test", timeoutMs: 300,
  });
  return { server, client, calls };
}

test("a timed-out initiate is sent again with the same body, signed again", async (t) => {
  const { server, client, calls } = await fakeApi();
  t.after(() => { server.closeAllConnections(); server.close(); });
  const initiated = await client.initiate({ amount: 49900, orderId: "ORD-1" });
  assert.equal(initiated.transaction_id, "T1");
  const initiates = calls.filter((call) => call.path === "/payment/initiate");
  assert.equal(initiates.length, 2);
  assert.equal(initiates[0].body, initiates[1].body);
  assert.equal(JSON.parse(initiates[0].body).order_id, "ORD-1");
  const { headers, body } = initiates[1];
  assert.equal(headers["x-client-key"], "ck_test");
  assert.equal(headers["x-signature"], signRequest("cs_test", Number(headers["x-timestamp"]), "POST", "/payment/initiate", body));
});

test("with no retry left a timed-out initiate is a transport error", async (t) => {
  const { server, client } = await fakeApi();
  t.after(() => { server.closeAllConnections(); server.close(); });
  client.initiateRetries = 0;
  await assert.rejects(client.initiate({ amount: 49900, orderId: "ORD-1" }), TransportError);
});

test("a refused connection is a transport error", async () => {
  const closed = createServer();
  await new Promise((resolve) => closed.listen(0, "127.0.0.1", resolve));
  const { port } = closed.address();
  await new Promise((resolve) => closed.close(resolve));
  const client = new Client({ baseUrl: `http://127.0.0.1:${port}`, clientKey: "ck_test", clientSalt: "cs_test", timeoutMs: 300 });
  await assert.rejects(client.initiate({ amount: 49900, orderId: "ORD-1" }), TransportError);
  await assert.rejects(client.wallet(), TransportError);
});

test("problem documents become typed errors", async (t) => {
  const { server, client } = await fakeApi();
  t.after(() => { server.closeAllConnections(); server.close(); });
  await assert.rejects(client.requestRefund("T1", { amount: 100, refundId: "R1" }), (error) => {
    assert.ok(error instanceof ConflictError);
    assert.equal(error.status, 409);
    assert.equal(error.code, "PAYMENT_NOT_REFUNDABLE");
    return true;
  });
  await assert.rejects(client.transactions({ limit: 0 }), (error) => {
    assert.ok(error instanceof ValidationError);
    assert.equal(error.field, "limit");
    return true;
  });
});
