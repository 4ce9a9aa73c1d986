// Types of the LightSpeed merchant API client (src/index.js). Amounts are integer paise;
// times are RFC 3339 strings. Field names are the API's own (snake_case).

export declare const WEBHOOK_TOLERANCE_SECS: number;

export declare function signRequest(salt: string, timestamp: number, method: string, path: string, body?: string | Uint8Array): string;
export declare function signWebhook(secret: string, msgId: string, timestamp: number, body: string | Uint8Array): string;
export declare function verifyWebhook(
  secret: string,
  headers: Headers | Record<string, string | string[] | undefined>,
  body: string | Uint8Array,
  options?: { now?: number; toleranceSecs?: number },
): unknown;

export interface Problem {
  type: string;
  title: string;
  status: number;
  code: string;
  detail: string;
  field?: string | null;
  errors?: { field: string; detail: string }[] | null;
  transaction_id?: string | null;
  amount_due_paise?: number | null;
  refundable_paise?: number | null;
}

export declare class ApiError extends Error {
  readonly status: number;
  readonly problem: Problem;
  readonly code: string;
  readonly title: string;
  readonly detail: string;
  readonly field: string | null;
  readonly errors: { field: string; detail: string }[];
  readonly transactionId: string | null;
  readonly headers: Headers;
}
export declare class AuthenticationError extends ApiError {}
export declare class PaymentRequiredError extends ApiError {}
export declare class NotFoundError extends ApiError {}
export declare class ConflictError extends ApiError {}
export declare class ValidationError extends ApiError {}
export declare class RateLimitedError extends ApiError {
  readonly retryAfter: number | null;
}
export declare class ServerError extends ApiError {}
export declare class TransportError extends Error {}
export declare class WebhookVerificationError extends Error {}
export declare function errorFromResponse(status: number, text: string, headers: Headers): ApiError;

export type PaymentStatus = "created" | "pending" | "succeeded" | "failed" | "refunded";

export interface Initiated { transaction_id: string; status: "created"; checkout_url: string }

export interface Transaction {
  transaction_id: string; order_id: string; amount: number; currency: string; status: PaymentStatus;
  gateway_id: string; refunded: number; created_at: string; checkout_url: string;
  commission?: number | null; failure_code?: string | null; failure_reason?: string | null;
  psp_order_id?: string | null; psp_payment_id?: string | null;
}

export interface Refund {
  refund_id: string; transaction_id: string; amount: number; reason: string; status: string;
  commission_treatment: string; commission_reversed: number; created_at: string; updated_at: string;
  failure_code?: string | null; failure_reason?: string | null; psp_refund_id?: string | null;
}

export interface RefundList { transaction_id: string; amount: number; refunded: number; refundable: number; refunds: Refund[] }

export interface DeliveryItem {
  delivery_id: string; event_type: string; endpoint_url: string; status: string; attempts: number; queued_at: string;
  delivered_at?: string | null; given_up_at?: string | null; last_error?: string | null;
  last_status_code?: number | null; next_attempt_at?: string | null;
}

export interface TransactionDetail extends Transaction { refundable: number; refunds: Refund[]; webhook_deliveries: DeliveryItem[] }

export interface TransactionItem {
  transaction_id: string; order_id: string; amount: number; currency: string; status: PaymentStatus;
  partially_refunded: boolean; refunded: number; refunds: number; open_refunds: number; gateway_id: string;
  attempts: number; created_at: string; updated_at: string; commission?: number | null;
  failed_at?: string | null; failure_code?: string | null; failure_reason?: string | null;
  psp_order_id?: string | null; psp_payment_id?: string | null; succeeded_at?: string | null;
}

export interface Page<T> { items: T[]; next_cursor?: string | null }

export interface TransactionFilters {
  status?: PaymentStatus | "partially_refunded"; from?: string; to?: string; min_amount?: number; max_amount?: number;
  order_id?: string; gateway_id?: string; refunded?: boolean; limit?: number; cursor?: string;
}

export interface Wallet {
  balance_due: number; available: number; warn_at: number; suspend_at: number; standing: string;
  commission_this_month: number; commission_reversed_this_month: number;
  last_payout?: number | null; last_payout_at?: string | null;
}

export interface LedgerEntry {
  entry_type: string; source_id: string; merchant_id: string; amount_paise: number; balance_effect_paise: number;
  occurred_at: string; log_position: number; detail?: string | null; fee_bps?: number | null;
  payment_amount_paise?: number | null; reference?: string | null;
}

export interface StatementEntry { at: string; kind: string; reference: string; amount_paise: number; balance_effect_paise: number }

export interface Statement {
  merchant_id: string; company_name: string; month: string; opening_balance_paise: number;
  commission_accrued_paise: number; commissions: number; commission_reversed_paise: number; payouts_paise: number;
  reversals_paise: number; settlements_paise: number; closing_balance_paise: number; pending_payouts_paise: number;
  entries: StatementEntry[];
}

export interface PaymentUsage { day: string; gateway_id: string; status: string; payments: number; volume: number }
export interface WhatsappUsage { merchant_id: string; day: string; template: string; queued: number; sent: number; failed: number }
export interface Usage { from: string; to: string; payments: PaymentUsage[]; whatsapp: WhatsappUsage[] }

export interface WebhookEndpoint {
  id: string; url: string; description: string; enabled: boolean; event_types: string[]; created_at: string;
  disabled_at?: string | null; previous_secret_valid_until?: string | null;
}
export interface CreatedWebhookEndpoint { endpoint: WebhookEndpoint; secret: string }
export interface RotatedSecret { secret: string; previous_valid_until?: string | null }
export interface TestEvent {
  delivery_id: string; event_type: string; delivered: boolean; latency_ms: number;
  status_code?: number | null; response_excerpt?: string | null; error?: string | null;
}
export interface Delivery {
  id: string; endpoint_id: string; endpoint_url: string; event_type: string;
  /** `null` for a test event, which reports on no payment. */
  transaction_id: string | null; test?: boolean; status: string;
  attempts: number; queued_at: string; delivered_at?: string | null; given_up_at?: string | null;
  last_error?: string | null; last_status_code?: number | null; next_attempt_at?: string | null;
}
export interface DeliveryPage { data: Delivery[]; next_cursor?: string | null }
export interface Attempt {
  attempt: number; duration_ms: number; attempted_at: string;
  status_code?: number | null; response_excerpt?: string | null; error?: string | null;
}
export interface DeliveryDetail { delivery: Delivery; payload: unknown; attempts: Attempt[] }
export interface ResentDelivery { id: string; status: string }

export interface ClientOptions {
  baseUrl: string;
  clientKey: string;
  clientSalt: string;
  /** Per-request timeout (default 10 000 ms). */
  timeoutMs?: number;
  /** How many times a timed-out initiate is sent again with the same order id (default 2). */
  initiateRetries?: number;
  /** The clock requests are signed at, in milliseconds (default Date.now). */
  now?: () => number;
}

export interface InitiateRequest {
  amount: number;
  orderId: string;
  currency?: "INR";
  customer?: { name?: string; email?: string; phone?: string };
  redirectUrl?: string;
  notes?: Record<string, string>;
}

export declare class Client {
  constructor(options: ClientOptions);
  readonly baseUrl: string;
  readonly clientKey: string;
  timeoutMs: number;
  initiateRetries: number;
  request(method: string, path: string, body?: string, accept?: string): Promise<Response>;
  initiate(request: InitiateRequest): Promise<Initiated>;
  payment(transactionId: string): Promise<Transaction>;
  requestRefund(transactionId: string, refund: { amount: number; refundId: string; reason?: string }): Promise<Refund>;
  refunds(transactionId: string): Promise<RefundList>;
  refund(refundId: string): Promise<Refund>;
  transactions(filters?: TransactionFilters): Promise<Page<TransactionItem>>;
  transactionsCsv(filters?: TransactionFilters): Promise<string>;
  transaction(transactionId: string): Promise<TransactionDetail>;
  wallet(): Promise<Wallet>;
  walletEntries(params?: { limit?: number; cursor?: string }): Promise<Page<LedgerEntry>>;
  statement(month: string): Promise<Statement>;
  statementText(month: string, mediaType?: "text/csv" | "text/html"): Promise<string>;
  invoices(): Promise<Record<string, unknown>>;
  invoice(number: string): Promise<Record<string, unknown>>;
  invoicePdf(number: string): Promise<Uint8Array>;
  usage(): Promise<Usage>;
  whatsappUsage(): Promise<WhatsappUsage[]>;
  webhookEndpoints(): Promise<WebhookEndpoint[]>;
  createWebhookEndpoint(endpoint: { url: string; description?: string; eventTypes?: string[] }): Promise<CreatedWebhookEndpoint>;
  webhookEndpoint(endpointId: string): Promise<WebhookEndpoint>;
  updateWebhookEndpoint(
    endpointId: string,
    changes: { url?: string; description?: string; enabled?: boolean; eventTypes?: string[] },
  ): Promise<WebhookEndpoint>;
  deleteWebhookEndpoint(endpointId: string): Promise<void>;
  rotateWebhookSecret(endpointId: string, options?: { graceSecs?: number }): Promise<RotatedSecret>;
  sendTestEvent(endpointId: string, eventType: string): Promise<TestEvent>;
  webhookDeliveries(filters?: {
    endpoint_id?: string; event_type?: string; status?: string; from?: string; to?: string; cursor?: string; limit?: number;
  }): Promise<DeliveryPage>;
  webhookDelivery(deliveryId: string): Promise<DeliveryDetail>;
  resendWebhookDelivery(deliveryId: string): Promise<ResentDelivery>;
}
