// Every merchant route of the OpenAPI document has a client method that calls it, signed.

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { createServer } from "node:http";
import { test } from "node:test";

import { Client, NotFoundError, signRequest } from "../src/index.js";

const OPENAPI = new URL("../../../api/openapi.json", import.meta.url);

function merchantRoutes() {
  const document = JSON.parse(readFileSync(OPENAPI, "utf8"));
  const routes = new Set();
  for (const [path, operations] of Object.entries(document.paths)) {
    for (const [method, operation] of Object.entries(operations)) {
      const security = operation?.security ?? [];
      if (security.some((scheme) => "merchant_signature" in scheme)) {
        routes.add(`${method.toUpperCase()} ${path.replace(/\{[^}]+\}/g, "{}")}`);
      }
    }
  }
  return routes;
}

test("each merchant route is called by a method, signed", async (t) => {
  const calls = [];
  const server = createServer((request, response) => {
    const chunks = [];
    request.on("data", (chunk) => chunks.push(chunk));
    request.on("end", () => {
      calls.push({ method: request.method, path: request.url, headers: request.headers, body: Buffer.concat(chunks) });
      response.writeHead(404, { "content-type": "application/problem+json" });
      response.end(JSON.stringify({ type: "about:blank", title: "Not Found", status: 404, code: "NOT_HERE", detail: "recorded" }));
    });
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  t.after(() => {
    server.closeAllConnections();
    server.close();
  });
  const client = new Client({ baseUrl: `http://127.0.0.1:${server.address().port}`, clientKey: "ck_test", clientSalt: "cs_test" });
  const methods = [
    () => client.initiate({ amount: 1, orderId: "O" }),
    () => client.payment("X1"),
    () => client.requestRefund("X1", { amount: 1, refundId: "R" }),
    () => client.refunds("X1"),
    () => client.refund("X1"),
    () => client.transactions({ status: "created", limit: 2 }),
    () => client.transactionsCsv(),
    () => client.transaction("X1"),
    () => client.wallet(),
    () => client.walletEntries({ limit: 1 }),
    () => client.statement("X1"),
    () => client.statementText("X1"),
    () => client.invoices(),
    () => client.invoice("X1"),
    () => client.invoicePdf("X1"),
    () => client.usage(),
    () => client.whatsappUsage(),
    () => client.webhookEndpoints(),
    () => client.createWebhookEndpoint({ url: "https://shop.example/hooks" }),
    () => client.webhookEndpoint("X1"),
    () => client.updateWebhookEndpoint("X1", { enabled: false }),
    () => client.deleteWebhookEndpoint("X1"),
    () => client.rotateWebhookSecret("X1"),
    () => client.sendTestEvent("X1", "payment.succeeded"),
    () => client.webhookDeliveries({ status: "pending" }),
    () => client.webhookDelivery("X1"),
    () => client.resendWebhookDelivery("X1"),
  ];
  for (const call of methods) await assert.rejects(call, NotFoundError);
  const called = new Set(calls.map(({ method, path }) => `${method} ${path.split("?")[0].replace(/\/X1(?=\/|$)/g, "/{}")}`));
  assert.deepEqual([...called].sort(), [...merchantRoutes()].sort());
  for (const { method, path, headers, body } of calls) {
    assert.equal(headers["x-signature"], signRequest("cs_test", Number(headers["x-timestamp"]), method, path, body), path);
  }
});
