// Integration run of the TypeScript client against a real LightSpeed API.
//
// Started by the Rust test `clients::the_typescript_client_works_against_the_real_api` with
// LIGHTSPEED_URL, LIGHTSPEED_CLIENT_KEY, LIGHTSPEED_CLIENT_SALT and LIGHTSPEED_SEEDED_ORDER (the
// order id of a payment the test made and projected). Exits non-zero on the first failure.

import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { createServer } from "node:http";

import {
  AuthenticationError,
  Client,
  ConflictError,
  NotFoundError,
  ValidationError,
  verifyWebhook,
} from "../src/index.js";

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};
const URL = env("LIGHTSPEED_URL");
const KEY = env("LIGHTSPEED_CLIENT_KEY");
const SALT = env("LIGHTSPEED_CLIENT_SALT");
const SEEDED_ORDER = env("LIGHTSPEED_SEEDED_ORDER");

async function expectError(Kind, code, call) {
  try {
    await call();
  } catch (error) {
    assert.ok(error instanceof Kind, `expected ${Kind.name}, got ${error}`);
    assert.equal(error.code, code, error.detail);
    return error;
  }
  throw new assert.AssertionError({ message: `expected ${Kind.name} ${code}, got an answer` });
}

function readBody(request) {
  return new Promise((resolve) => {
    const chunks = [];
    request.on("data", (chunk) => chunks.push(chunk));
    request.on("end", () => resolve(Buffer.concat(chunks)));
  });
}

async function listen(handler) {
  const server = createServer(handler);
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  const stop = () => {
    server.closeAllConnections();
    server.close();
  };
  return { url: `http://127.0.0.1:${server.address().port}`, stop };
}

/** A proxy to the API that holds the first initiate's answer past the client's timeout (the
 * API has made the payment by then), and passes everything else straight through. */
async function slowFirstInitiateProxy() {
  const answers = [];
  const proxy = await listen(async (request, response) => {
    const body = await readBody(request);
    const headers = Object.fromEntries(
      Object.entries(request.headers).filter(([name]) => name.startsWith("x-") || name === "content-type"),
    );
    const upstream = await fetch(URL + request.url, { method: request.method, headers, body });
    const text = await upstream.text();
    answers.push(text);
    if (answers.length === 1) await new Promise((resolve) => setTimeout(resolve, 1500));
    if (response.destroyed) return; // the client gave up on this attempt, as intended
    response.writeHead(upstream.status, { "content-type": "application/json" });
    response.end(text);
  });
  return { ...proxy, answers };
}

async function initiateRetriedAfterATimeout() {
  const proxy = await slowFirstInitiateProxy();
  const slow = new Client({ baseUrl: proxy.url, clientKey: KEY, clientSalt: SALT, timeoutMs: 500, initiateRetries: 2 });
  const orderId = `TS-${randomUUID().slice(0, 12)}`;
  const initiated = await slow.initiate({ amount: 49900, orderId, customer: { name: "Asha" } });
  proxy.stop();
  assert.equal(proxy.answers.length, 2, "two attempts reached the API");
  assert.equal(proxy.answers[0], proxy.answers[1], "the retry answered the same payment");
  assert.equal(JSON.parse(proxy.answers[0]).transaction_id, initiated.transaction_id);
  assert.equal(initiated.status, "created");
  return { initiated, orderId };
}

async function payments(client) {
  const { initiated, orderId } = await initiateRetriedAfterATimeout();
  const again = await client.initiate({ amount: 49900, orderId, customer: { name: "Asha" } });
  assert.equal(again.transaction_id, initiated.transaction_id, "a replay answers the same payment");
  const reused = await expectError(ConflictError, "ORDER_ID_REUSED", () => client.initiate({ amount: 50000, orderId }));
  assert.equal(reused.transactionId, initiated.transaction_id);
  const payment = await client.payment(initiated.transaction_id);
  assert.deepEqual([payment.amount, payment.order_id, payment.status], [49900, orderId, "created"]);
  await expectError(NotFoundError, "TRANSACTION_NOT_FOUND", () => client.payment(randomUUID()));
  const refused = await expectError(ConflictError, "PAYMENT_NOT_REFUNDABLE", () =>
    client.requestRefund(initiated.transaction_id, { amount: 100, refundId: "RF-TS-1" }),
  );
  assert.equal(refused.status, 409);
  const refunds = await client.refunds(initiated.transaction_id);
  assert.deepEqual([refunds.refunds, refunds.refunded], [[], 0]);
  await expectError(NotFoundError, "REFUND_NOT_FOUND", () => client.refund("RF-TS-1"));
  const invalid = await expectError(ValidationError, "INVALID_FIELD", () => client.initiate({ amount: 0, orderId: "TS-ZERO" }));
  assert.equal(invalid.status, 422);
}

async function reads(client) {
  const page = await client.transactions();
  assert.ok(page.items.some((item) => item.order_id === SEEDED_ORDER), "seeded payment listed");
  const one = await client.transactions({ order_id: SEEDED_ORDER, limit: 5 });
  assert.deepEqual(one.items.map((item) => item.order_id), [SEEDED_ORDER]);
  const detail = await client.transaction(one.items[0].transaction_id);
  assert.equal(detail.order_id, SEEDED_ORDER);
  assert.ok(Array.isArray(detail.refunds) && Array.isArray(detail.webhook_deliveries));
  const lines = (await client.transactionsCsv({ order_id: SEEDED_ORDER })).trim().split("\n");
  assert.ok(lines[0].startsWith("transaction_id,order_id,"), lines[0]);
  assert.equal(lines.length, 2);
  assert.ok(lines[1].includes(SEEDED_ORDER));
  const wallet = await client.wallet();
  assert.equal(wallet.standing, "active");
  assert.equal(typeof wallet.balance_due, "number");
  await client.walletEntries({ limit: 10 });
  const month = new Date().toISOString().slice(0, 7);
  assert.equal((await client.statement(month)).month, month);
  const usage = await client.usage();
  assert.ok(Array.isArray(usage.payments) && usage.from);
  await client.whatsappUsage();
  const badLimit = await expectError(ValidationError, "INVALID_FIELD", () => client.transactions({ limit: "many" }));
  assert.ok(badLimit.detail.includes("limit"));
}

async function webhooks(client) {
  const received = { secret: "", verified: [] };
  const receiver = await listen(async (request, response) => {
    const body = await readBody(request);
    received.verified.push(verifyWebhook(received.secret, request.headers, body));
    response.writeHead(200);
    response.end("ok");
  });
  const created = await client.createWebhookEndpoint({
    url: `${receiver.url}/hooks`, description: "typescript client", eventTypes: ["payment.*"],
  });
  assert.ok(created.secret.startsWith("whsec_"));
  received.secret = created.secret;
  const endpointId = created.endpoint.id;
  assert.ok((await client.webhookEndpoints()).some((endpoint) => endpoint.id === endpointId));
  assert.deepEqual((await client.webhookEndpoint(endpointId)).event_types, ["payment.*"]);
  const attempt = await client.sendTestEvent(endpointId, "payment.succeeded");
  assert.equal(attempt.delivered, true, JSON.stringify(attempt));
  assert.equal(attempt.status_code, 200);
  assert.equal(received.verified.length, 1);
  assert.equal(received.verified[0].type, "payment.succeeded");
  received.secret = (await client.rotateWebhookSecret(endpointId, { graceSecs: 60 })).secret;
  await client.sendTestEvent(endpointId, "payment.failed");
  assert.equal(received.verified.at(-1).type, "payment.failed", "verified with the new secret");
  const updated = await client.updateWebhookEndpoint(endpointId, { enabled: false, description: "off" });
  assert.deepEqual([updated.enabled, updated.description], [false, "off"]);
  await client.webhookDeliveries({ endpoint_id: endpointId, limit: 5 });
  await expectError(NotFoundError, "WEBHOOK_DELIVERY_NOT_FOUND", () => client.webhookDelivery(randomUUID()));
  await expectError(NotFoundError, "WEBHOOK_DELIVERY_NOT_FOUND", () => client.resendWebhookDelivery(randomUUID()));
  await client.deleteWebhookEndpoint(endpointId);
  await expectError(NotFoundError, "WEBHOOK_ENDPOINT_NOT_FOUND", () => client.webhookEndpoint(endpointId));
  receiver.stop();
}

const client = new Client({ baseUrl: URL, clientKey: KEY, clientSalt: SALT });
await expectError(AuthenticationError, "BAD_SIGNATURE", () =>
  new Client({ baseUrl: URL, clientKey: KEY, clientSalt: `${SALT}x` }).wallet(),
);
await payments(client);
await reads(client);
await webhooks(client);
console.log("typescript client: every check passed");
