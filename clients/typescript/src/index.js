// Client for the LightSpeed merchant API: Node 18+ `fetch` and `node:crypto`, no dependencies.
// Types for TypeScript users are in index.d.ts (see clients/README.md for why there is no build).

import { createHmac, timingSafeEqual } from "node:crypto";

/** How far a webhook's timestamp may be from the receiver's clock, either way (5 minutes). */
export const WEBHOOK_TOLERANCE_SECS = 300;

/** hex(HMAC-SHA256(salt, `${timestamp}\n${METHOD}\n${path}\n${raw body}`)). */
export function signRequest(salt, timestamp, method, path, body = "") {
  return createHmac("sha256", salt)
    .update(`${timestamp}\n${method.toUpperCase()}\n${path}\n`)
    .update(body)
    .digest("hex");
}

/** The server refused the request; `code` is the stable reason from its problem+json body. */
export class ApiError extends Error {
  constructor(status, problem, headers) {
    super(`${status} ${problem.code ?? "UNKNOWN"}: ${problem.detail ?? ""}`);
    this.name = new.target.name;
    this.status = status;
    this.problem = problem;
    this.code = problem.code ?? "UNKNOWN";
    this.title = problem.title ?? "";
    this.detail = problem.detail ?? "";
    this.field = problem.field ?? null;
    this.errors = problem.errors ?? [];
    this.transactionId = problem.transaction_id ?? null;
    this.headers = headers;
  }
}
/** 401: missing, stale or wrong signature, or an unknown client key. */
export class AuthenticationError extends ApiError {}
/** 402: the merchant is suspended until its commission due is paid. */
export class PaymentRequiredError extends ApiError {}
/** 404: no such resource for this merchant. */
export class NotFoundError extends ApiError {}
/** 409: the request conflicts with the resource's state. */
export class ConflictError extends ApiError {}
/** 400, 413, 415 or 422: the request itself is wrong; `field` names the culprit when known. */
export class ValidationError extends ApiError {}
/** 429: too many requests; `retryAfter` is the server's advice in seconds. */
export class RateLimitedError extends ApiError {
  get retryAfter() {
    const value = Number.parseInt(this.headers?.get("retry-after") ?? "", 10);
    return Number.isNaN(value) ? null : value;
  }
}
/** 5xx: the server could not answer now. */
export class ServerError extends ApiError {}
/** The server could not be reached or did not answer in time (after any retries). */
export class TransportError extends Error {
  constructor(message, options) {
    super(message, options);
    this.name = "TransportError";
  }
}
/** A webhook's headers or signature do not verify; the message must be dropped. */
export class WebhookVerificationError extends Error {
  constructor(message) {
    super(message);
    this.name = "WebhookVerificationError";
  }
}

const ERRORS_BY_STATUS = {
  400: ValidationError,
  401: AuthenticationError,
  402: PaymentRequiredError,
  404: NotFoundError,
  409: ConflictError,
  413: ValidationError,
  415: ValidationError,
  422: ValidationError,
  429: RateLimitedError,
};

/** The typed error for a refused answer, from its problem+json body (or a bare status). */
export function errorFromResponse(status, text, headers) {
  let problem = {};
  try {
    const parsed = JSON.parse(text);
    if (parsed && typeof parsed === "object" && !Array.isArray(parsed)) problem = parsed;
  } catch {
    problem = { detail: text.slice(0, 200) };
  }
  problem.status ??= status;
  const Kind = ERRORS_BY_STATUS[status] ?? (status >= 500 ? ServerError : ApiError);
  return new Kind(status, problem, headers);
}

function query(params = {}) {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== null) search.append(key, String(value));
  }
  const text = search.toString();
  return text ? `?${text}` : "";
}

const segment = encodeURIComponent;

function isTimeout(error) {
  return error?.name === "TimeoutError" || error?.cause?.name === "TimeoutError";
}

/** A merchant's signed client. Amounts are integer paise. */
export class Client {
  /**
   * @param {{baseUrl: string, clientKey: string, clientSalt: string, timeoutMs?: number,
   *   initiateRetries?: number, now?: () => number}} options
   */
  constructor({ baseUrl, clientKey, clientSalt, timeoutMs = 10_000, initiateRetries = 2, now = Date.now }) {
    this.baseUrl = baseUrl.replace(/\/+$/, "");
    this.clientKey = clientKey;
    Object.defineProperty(this, "salt", { value: clientSalt, enumerable: false });
    this.timeoutMs = timeoutMs;
    this.initiateRetries = initiateRetries;
    this.now = now;
  }

  /** Sends one signed request; answers the Response, or throws the typed ApiError / TransportError. */
  async request(method, path, body, accept = "application/json") {
    const timestamp = Math.floor(this.now() / 1000);
    const headers = {
      "x-client-key": this.clientKey,
      "x-timestamp": String(timestamp),
      "x-signature": signRequest(this.salt, timestamp, method, path, body ?? ""),
      accept,
    };
    if (body !== undefined) headers["content-type"] = "application/json";
    let response;
    try {
      response = await fetch(this.baseUrl + path, {
        method,
        headers,
        body,
        signal: AbortSignal.timeout(this.timeoutMs),
      });
    } catch (error) {
      throw new TransportError(`${method} ${path}: ${error.message}`, { cause: error });
    }
    if (!response.ok) throw errorFromResponse(response.status, await response.text(), response.headers);
    return response;
  }

  async json(method, path, payload) {
    const body = payload === undefined ? undefined : JSON.stringify(payload);
    const response = await this.request(method, path, body);
    const text = await response.text();
    return text ? JSON.parse(text) : null;
  }

  async text(path, accept) {
    return (await this.request("GET", path, undefined, accept)).text();
  }

  /** Starts a payment; a timed-out attempt is sent again with the same order id and body
   * (the order id is the idempotency key, so the retry answers the payment already made). */
  async initiate({ amount, orderId, currency = "INR", customer, redirectUrl, notes }) {
    const payload = { amount, currency, order_id: orderId, customer, redirect_url: redirectUrl, notes };
    const body = JSON.stringify(payload);
    for (let attempt = 0; ; attempt += 1) {
      try {
        const response = await this.request("POST", "/payment/initiate", body);
        return await response.json();
      } catch (error) {
        const timedOut = error instanceof TransportError && isTimeout(error.cause);
        if (!timedOut || attempt >= this.initiateRetries) throw error;
      }
    }
  }

  /** A payment by id (`GET /transaction/{id}`). */
  payment(transactionId) {
    return this.json("GET", `/transaction/${segment(transactionId)}`);
  }

  /** Asks for a refund; `refundId` is the merchant's idempotency key. */
  requestRefund(transactionId, { amount, refundId, reason }) {
    const payload = { amount, refund_id: refundId, reason };
    return this.json("POST", `/payment/${segment(transactionId)}/refunds`, payload);
  }

  /** A payment's refunds. */
  refunds(transactionId) {
    return this.json("GET", `/payment/${segment(transactionId)}/refunds`);
  }

  /** One refund by the merchant's refund id. */
  refund(refundId) {
    return this.json("GET", `/refunds/${segment(refundId)}`);
  }

  /** A page of payments, newest first (filters as the API's query parameters). */
  transactions(filters) {
    return this.json("GET", `/transactions${query(filters)}`);
  }

  /** Every matching payment as CSV. */
  transactionsCsv(filters) {
    return this.text(`/transactions${query(filters)}`, "text/csv");
  }

  /** A payment with its refunds and webhook deliveries. */
  transaction(transactionId) {
    return this.json("GET", `/transactions/${segment(transactionId)}`);
  }

  /** Commission due, thresholds and standing. */
  wallet() {
    return this.json("GET", "/wallet");
  }

  /** A page of the commission ledger. */
  walletEntries(params) {
    return this.json("GET", `/wallet/entries${query(params)}`);
  }

  /** The statement of `month` (`yyyy-mm`) as JSON. */
  statement(month) {
    return this.json("GET", `/statements/${segment(month)}`);
  }

  /** The statement of `month` as CSV or HTML. */
  statementText(month, mediaType = "text/csv") {
    return this.text(`/statements/${segment(month)}`, mediaType);
  }

  /** Your monthly commission invoices, newest first (amounts in paise). */
  invoices() {
    return this.json("GET", "/invoices");
  }

  /** One of your invoices, e.g. `LS-2627-000042`, as JSON. */
  invoice(number) {
    return this.json("GET", `/invoices/${segment(number)}`);
  }

  /** One of your invoices as its PDF bytes. */
  async invoicePdf(number) {
    const response = await this.request("GET", `/invoices/${segment(number)}`, undefined, "application/pdf");
    return new Uint8Array(await response.arrayBuffer());
  }

  /** Payments by day, status and gateway, and WhatsApp usage, over 30 days. */
  usage() {
    return this.json("GET", "/usage");
  }

  /** WhatsApp messages by day and template. */
  whatsappUsage() {
    return this.json("GET", "/merchant/whatsapp/usage");
  }

  /** Every webhook endpoint of the merchant. */
  webhookEndpoints() {
    return this.json("GET", "/webhook-endpoints");
  }

  /** Adds an endpoint; the answer holds its `whsec_` secret, shown this once. */
  createWebhookEndpoint({ url, description, eventTypes }) {
    return this.json("POST", "/webhook-endpoints", { url, description, event_types: eventTypes });
  }

  /** One endpoint. */
  webhookEndpoint(endpointId) {
    return this.json("GET", `/webhook-endpoints/${segment(endpointId)}`);
  }

  /** Changes url, description, enabled or eventTypes. */
  updateWebhookEndpoint(endpointId, { url, description, enabled, eventTypes }) {
    const payload = { url, description, enabled, event_types: eventTypes };
    return this.json("PATCH", `/webhook-endpoints/${segment(endpointId)}`, payload);
  }

  /** Removes an endpoint. */
  async deleteWebhookEndpoint(endpointId) {
    await this.request("DELETE", `/webhook-endpoints/${segment(endpointId)}`);
  }

  /** A new secret; the previous one stays valid for `graceSecs`. */
  rotateWebhookSecret(endpointId, { graceSecs } = {}) {
    return this.json("POST", `/webhook-endpoints/${segment(endpointId)}/secret/rotate`, { grace_secs: graceSecs });
  }

  /** Sends a signed sample event to the endpoint; answers the attempt. */
  sendTestEvent(endpointId, eventType) {
    return this.json("POST", `/webhook-endpoints/${segment(endpointId)}/test`, { event_type: eventType });
  }

  /** A page of deliveries (filters: endpoint_id, event_type, status, from, to, cursor, limit). */
  webhookDeliveries(filters) {
    return this.json("GET", `/webhook-deliveries${query(filters)}`);
  }

  /** One delivery with its payload and every attempt. */
  webhookDelivery(deliveryId) {
    return this.json("GET", `/webhook-deliveries/${segment(deliveryId)}`);
  }

  /** Queues a given-up delivery again. */
  resendWebhookDelivery(deliveryId) {
    return this.json("POST", `/webhook-deliveries/${segment(deliveryId)}/resend`);
  }
}

function secretKey(secret) {
  const encoded = secret.startsWith("whsec_") ? secret.slice("whsec_".length) : secret;
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(encoded)) {
    throw new WebhookVerificationError("the secret is not whsec_ followed by base64");
  }
  return Buffer.from(encoded, "base64");
}

function header(headers, name) {
  const value = typeof headers.get === "function"
    ? headers.get(name)
    : Object.entries(headers).find(([key]) => key.toLowerCase() === name)?.[1];
  if (value === undefined || value === null) throw new WebhookVerificationError(`missing header ${name}`);
  return Array.isArray(value) ? value.join(" ") : String(value);
}

/** The `v1,<base64>` signature of a message (what the sender puts in `webhook-signature`). */
export function signWebhook(secret, msgId, timestamp, body) {
  const digest = createHmac("sha256", secretKey(secret)).update(`${msgId}.${timestamp}.`).update(body).digest();
  return `v1,${digest.toString("base64")}`;
}

/**
 * Checks a webhook by the Standard Webhooks algorithm; answers its parsed JSON payload.
 * `body` must be the raw bytes (or string) received. Throws WebhookVerificationError.
 */
export function verifyWebhook(secret, headers, body, { now = Date.now() / 1000, toleranceSecs = WEBHOOK_TOLERANCE_SECS } = {}) {
  const raw = typeof body === "string" ? Buffer.from(body) : Buffer.from(body);
  const msgId = header(headers, "webhook-id");
  const timestampText = header(headers, "webhook-timestamp").trim();
  const signatures = header(headers, "webhook-signature");
  if (!/^[0-9]+$/.test(timestampText)) throw new WebhookVerificationError("malformed webhook-timestamp");
  const timestamp = Number.parseInt(timestampText, 10);
  if (Math.abs(now - timestamp) > toleranceSecs) {
    throw new WebhookVerificationError("webhook timestamp outside the tolerance");
  }
  const expected = Buffer.from(signWebhook(secret, msgId, timestamp, raw).slice(3));
  for (const candidate of signatures.split(" ")) {
    const [version, signature = ""] = candidate.split(",", 2);
    const given = Buffer.from(signature);
    if (version === "v1" && given.length === expected.length && timingSafeEqual(given, expected)) {
      return JSON.parse(raw.toString("utf8"));
    }
  }
  throw new WebhookVerificationError("no signature matches");
}
