// The server-side client: a sender's secret token records events, asks the send decision
// (single and batch), makes unsubscribe links with their mail headers, reads the suppression list
// and its changes, exports and erases, manages webhooks and API tokens, and fetches evidence.
// Errors are thrown as ConsentLedgerError carrying the RFC 9457 problem. A busy or unavailable
// service (429, 503, a lost connection) is retried with back-off (Retry-After honoured) where a
// retry cannot do a thing twice: reads, and writes that carry an idempotency key (the same key on
// every attempt). Never use a secret token in a browser: pages use bindSignupForm with a
// publishable key.

import type { components } from "./openapi.js";

type S = components["schemas"];
export type NewEvent = S["NewEvent"];
export type RecordedEvent = S["RecordedEvent"];
export type EventBatch = S["EventBatch"];
export type RecordedBatch = S["RecordedBatch"];
export type Decision = S["Decision"];
export type ProvenDecision = S["ProvenDecision"];
export type CampaignProof = S["CampaignProof"];
export type CheckResults = S["CheckResults"];
export type LinkRequest = S["LinkRequest"];
export type LinkBatch = S["LinkBatch"];
export type Problem = S["Problem"];
export type Bundle = S["Bundle"];
export type NewCollectionPoint = S["NewCollectionPoint"];
export type CollectionPoint = S["CollectionPoint"];
export type CollectionPointPage = S["CollectionPointPage"];
export type SuppressionPage = S["SuppressionPage"];
export type SuppressionEntry = S["SuppressionEntry"];
export type SuppressionChanges = S["SuppressionChanges"];
export type ExportPage = S["ExportPage"];
export type EventRecord = S["EventRecord"];
export type Erasure = S["Erasure"];
export type DisplayNotice = S["DisplayNotice"];
export type Tenant = S["Tenant"];
export type TenantProfile = S["TenantProfile"];
export type NewWebhook = S["NewWebhook"];
export type Webhook = S["Webhook"];
export type WebhookPage = S["WebhookPage"];
export type WebhookEvent = S["WebhookEvent"];
export type Delivery = S["Delivery"];
export type DeliveryPage = S["DeliveryPage"];
export type NewToken = S["NewToken"];
export type ApiToken = S["ApiToken"];
export type IssuedToken = S["IssuedToken"];
export type TokenPage = S["TokenPage"];
export type PublishableKey = S["PublishableKey"];
export type PublishableKeyPage = S["PublishableKeyPage"];

/** Where a list starts and how much of it to take. */
export interface PageOptions {
  /** The `next_after` of the previous page. */
  after?: string | number;
  /** Items per page (each list has its range; see the API reference). */
  limit?: number;
}

/** An error answer of the service (RFC 9457 problem details), or a network failure (status 0). */
export class ConsentLedgerError extends Error {
  constructor(
    readonly status: number,
    readonly problem: Partial<Problem> & Record<string, unknown>,
  ) {
    super(`${status} ${problem.title ?? "error"}: ${problem.detail ?? ""}`.trim());
    this.name = "ConsentLedgerError";
  }

  /** Whether trying again later may succeed (network failure, 429, 5xx). */
  get retryable(): boolean {
    return this.status === 0 || this.status === 429 || this.status >= 500;
  }
}

/** Options of the server-side client. */
export interface ClientOptions {
  /** The service's base URL, e.g. https://ledger.example.jp */
  baseUrl: string;
  /** A sender (or admin, regulator) bearer token. */
  token: string;
  /** A fetch implementation (default: the global one). */
  fetch?: typeof fetch;
  /** Attempts after the first for a retryable failure (default 3; 0 turns retries off). */
  retries?: number;
  /** The first back-off in milliseconds, doubled each attempt, with jitter (default 250). */
  retryDelayMs?: number;
}

/** Waits `ms` milliseconds. */
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The wait before attempt `attempt` (1, 2, …): the server's Retry-After if it gave one (capped
 * at 60 s), else exponential back-off from `base` with full jitter. */
export function backoffMs(attempt: number, base: number, retryAfter: string | null): number {
  const seconds = retryAfter === null ? NaN : Number(retryAfter);
  if (Number.isFinite(seconds) && seconds >= 0) return Math.min(seconds, 60) * 1000;
  return Math.random() * base * 2 ** (attempt - 1);
}

/** A query string of the defined values. */
function query(values: Record<string, string | number | boolean | undefined>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(values)) if (v !== undefined) q.set(k, String(v));
  const text = q.toString();
  return text ? `?${text}` : "";
}

/** Whether the hex `a` equals `b` in time independent of where they differ. */
function sameHex(a: string, b: string): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a.charCodeAt(i) ^ b.charCodeAt(i);
  return diff === 0;
}

/**
 * Checks a webhook delivery as its receiver: `header` is the `Consent-Ledger-Signature` value
 * (`t=<unix>,v1=<hex>[,v1=<hex>]`), `body` the raw request body, `secret` the webhook's secret
 * as the ledger showed it (base64; the HMAC key is the bytes it decodes to). True if one `v1`
 * is HMAC-SHA256(key, "<t>.<body>") and `t` is within `toleranceSeconds` (default 300) of now.
 */
export async function verifyWebhookSignature(
  secret: string,
  header: string,
  body: string,
  opts: { toleranceSeconds?: number; now?: number } = {},
): Promise<boolean> {
  const parts = header.split(",").map((p) => p.trim());
  const t = parts.find((p) => p.startsWith("t="))?.slice(2);
  if (!t || !/^\d+$/.test(t)) return false;
  const now = opts.now ?? Date.now() / 1000;
  if (Math.abs(now - Number(t)) > (opts.toleranceSeconds ?? 300)) return false;
  const raw = Uint8Array.from(atob(secret), (c) => c.charCodeAt(0));
  const key = await globalThis.crypto.subtle.importKey("raw", raw, { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  const tag = new Uint8Array(await globalThis.crypto.subtle.sign("HMAC", key, new TextEncoder().encode(`${t}.${body}`)));
  const hex = Array.from(tag, (b) => b.toString(16).padStart(2, "0")).join("");
  return parts.some((p) => p.startsWith("v1=") && sameHex(p.slice(3), hex));
}

/** A new random idempotency key. */
export function idempotencyKey(): string {
  return globalThis.crypto.randomUUID();
}

/** The server-side client. */
export class ConsentLedger {
  private readonly base: string;
  private readonly fetcher: typeof fetch;

  constructor(private readonly options: ClientOptions) {
    this.base = options.baseUrl.replace(/\/+$/, "");
    this.fetcher = options.fetch ?? globalThis.fetch.bind(globalThis);
  }

  /** One request, retried (with the same headers, so the same idempotency key) while the
   * failure is retryable and a retry is safe. */
  private async call<T>(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<T> {
    const safe = method !== "POST" || "idempotency-key" in headers;
    const retries = this.options.retries ?? 3;
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.once<T>(method, path, body, headers);
      } catch (e) {
        const failure = e as ConsentLedgerError & { retryAfter?: string | null };
        // A 429 was refused before anything was done: always safe to repeat.
        const repeatable = failure.status === 429 || (safe && failure.retryable);
        if (!(e instanceof ConsentLedgerError) || !repeatable || attempt > retries) throw e;
        await sleep(backoffMs(attempt, this.options.retryDelayMs ?? 250, failure.retryAfter ?? null));
      }
    }
  }

  private async once<T>(method: string, path: string, body: unknown, headers: Record<string, string>): Promise<T> {
    let res: Response;
    try {
      res = await this.fetcher(`${this.base}${path}`, {
        method,
        headers: {
          authorization: `Bearer ${this.options.token}`,
          ...(body === undefined ? {} : { "content-type": "application/json" }),
          ...headers,
        },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (e) {
      throw new ConsentLedgerError(0, { title: "network error", detail: String(e) });
    }
    const text = await res.text();
    if (!res.ok) {
      let problem: Record<string, unknown>;
      try {
        problem = JSON.parse(text);
      } catch {
        problem = { title: res.statusText, detail: text };
      }
      throw Object.assign(new ConsentLedgerError(res.status, problem), { retryAfter: res.headers.get("retry-after") });
    }
    if (res.status === 204) return undefined as T;
    return (res.headers.get("content-type")?.includes("json") ? JSON.parse(text) : text) as T;
  }

  /** Registers a consent screen, form or template version (content-addressed: registering the
   * same content again gives the same id); events name it as their `collection_point`. */
  registerCollectionPoint(point: NewCollectionPoint): Promise<CollectionPoint> {
    return this.call("POST", "/v1/collection-points", point);
  }

  /** Records one opt-in, opt-out or confirmation; durable when this resolves. Retries with the
   * same idempotency key record it once. */
  recordEvent(event: NewEvent, opts: { idempotencyKey?: string } = {}): Promise<RecordedEvent> {
    return this.call("POST", "/v1/events", event, { "idempotency-key": opts.idempotencyKey ?? idempotencyKey() });
  }

  /** Records up to 1,000 events atomically. */
  recordEvents(batch: EventBatch, opts: { idempotencyKey?: string } = {}): Promise<RecordedBatch> {
    return this.call("POST", "/v1/events:batch", batch, { "idempotency-key": opts.idempotencyKey ?? idempotencyKey() });
  }

  /** May this address be mailed for this purpose now? */
  decision(email: string, purpose: string): Promise<Decision> {
    const q = new URLSearchParams({ email, purpose });
    return this.call("GET", `/v1/consent?${q}`);
  }

  /** The decision with its proof, to keep as evidence that you asked before sending (check it offline with verifyDecision). */
  provenDecision(email: string, purpose: string): Promise<ProvenDecision> {
    const q = new URLSearchParams({ email, purpose, proof: "true" });
    return this.call("GET", `/v1/consent?${q}`);
  }

  /** The decision for many addresses at once (before a campaign); with `record`, the check is recorded in the log (`campaign_check` names it). */
  check(emails: string[], purpose: string, opts: { record?: boolean } = {}): Promise<CheckResults> {
    return this.call("POST", "/v1/consent:check", { emails, purpose, ...(opts.record ? { record: true } : {}) });
  }

  /** The proof that `email` was in recorded campaign check `id` with its decision (check it offline with verifyCampaign). */
  campaignProof(id: string, email: string): Promise<CampaignProof> {
    const q = new URLSearchParams({ email });
    return this.call("GET", `/v1/campaign-checks/${encodeURIComponent(id)}/proof?${q}`);
  }

  /** Signed unsubscribe links with ready List-Unsubscribe headers, one per address. */
  unsubscribeLinks(request: LinkRequest): Promise<LinkBatch> {
    return this.call("POST", "/v1/unsubscribe-links", request);
  }

  /** The evidence bundle of an address (check it with verifyEvidence). */
  evidence(email: string, opts: { tenant?: string } = {}): Promise<Bundle> {
    const q = new URLSearchParams({ email, ...(opts.tenant ? { tenant: opts.tenant } : {}) });
    return this.call("GET", `/v1/evidence?${q}`);
  }

  /** The log's verifier key, as the service states it (compare it with the published one). */
  async verifierKey(): Promise<string> {
    return (await this.call<string>("GET", "/v1/log/verifier-key")).trim();
  }

  /** Every item of a list, page after page (`page` fetches one page after a cursor). */
  async *all<P extends { next_after?: string | number | null }, I>(
    page: (after: string | number | undefined) => Promise<P>,
    items: (page: P) => I[],
  ): AsyncGenerator<I> {
    let after: string | number | undefined;
    do {
      const current = await page(after);
      yield* items(current);
      after = current.next_after ?? undefined;
    } while (after !== undefined);
  }

  /** The tenant's collection point versions (optionally of one `name`), in registration order. */
  collectionPoints(opts: PageOptions & { name?: string; tenant?: string } = {}): Promise<CollectionPointPage> {
    return this.call("GET", `/v1/collection-points${query({ ...opts })}`);
  }

  /** Every event of one address, with leaf indexes (a pending opt-in carries its `confirmation_url`). */
  history(email: string, opts: { tenant?: string } = {}): Promise<{ events: EventRecord[] }> {
    return this.call("GET", `/v1/subjects/events${query({ email, ...opts })}`);
  }

  /** The suppression list for a purpose: refusals in force, each with when, its scope, reason and source. */
  suppression(purpose: string, opts: PageOptions & { tenant?: string } = {}): Promise<SuppressionPage> {
    return this.call("GET", `/v1/suppression${query({ purpose, ...opts })}`);
  }

  /** The suppression list as CSV (a header row, one entry a row), one page. */
  suppressionCsv(purpose: string, opts: PageOptions & { tenant?: string } = {}): Promise<string> {
    return this.call("GET", `/v1/suppression${query({ purpose, format: "csv", ...opts })}`);
  }

  /** Changes to the suppression list since `since` (each address and purpose with its
   * suppression now: apply as a set); poll again with `since: resume_since`. */
  suppressionChanges(opts: { since?: number; purpose?: string; limit?: number; tenant?: string } = {}): Promise<SuppressionChanges> {
    return this.call("GET", `/v1/suppression/changes${query({ ...opts })}`);
  }

  /** A page of the tenant's consent records, oldest first. */
  exportEvents(opts: PageOptions & { tenant?: string } = {}): Promise<ExportPage> {
    return this.call("GET", `/v1/events/export${query({ ...opts })}`);
  }

  /** Erases an address's personal data once the law allows (its refusal keeps binding). */
  erase(email: string): Promise<Erasure> {
    return this.call("DELETE", `/v1/subjects${query({ email })}`);
  }

  /** The footer every mail must carry, as text and HTML (with `email`, the recipient's own
   * unsubscribe link in it). */
  displayNotice(opts: { lang?: "ja" | "en"; email?: string; purpose?: string } = {}): Promise<DisplayNotice> {
    return this.call("GET", `/v1/display-notice${query({ ...opts })}`);
  }

  /** The tenant, with its display profile and purposes. */
  tenant(id: string): Promise<Tenant> {
    return this.call("GET", `/v1/tenants/${encodeURIComponent(id)}`);
  }

  /** Changes the tenant's display profile (the fields given replace the stored ones). */
  updateTenant(id: string, profile: TenantProfile): Promise<Tenant> {
    return this.call("PATCH", `/v1/tenants/${encodeURIComponent(id)}`, profile);
  }

  /** Registers a webhook for `events` (default opt-outs); the answer's `secret` is shown once. */
  createWebhook(webhook: NewWebhook): Promise<Webhook> {
    return this.call("POST", "/v1/webhooks", webhook);
  }

  /** The tenant's active webhooks (without secrets). */
  webhooks(opts: PageOptions = {}): Promise<WebhookPage> {
    return this.call("GET", `/v1/webhooks${query({ ...opts })}`);
  }

  /** Removes a webhook. */
  async removeWebhook(id: string): Promise<void> {
    await this.call("DELETE", `/v1/webhooks/${encodeURIComponent(id)}`);
  }

  /** A new secret for a webhook (shown once); the old one signs too for `overlapHours` (default 24). */
  rotateWebhookSecret(id: string, opts: { overlapHours?: number } = {}): Promise<Webhook> {
    const body = opts.overlapHours === undefined ? {} : { overlap_hours: opts.overlapHours };
    return this.call("POST", `/v1/webhooks/${encodeURIComponent(id)}/rotate-secret`, body);
  }

  /** Sends a signed test delivery now and answers its outcome. */
  testWebhook(id: string): Promise<Delivery> {
    return this.call("POST", `/v1/webhooks/${encodeURIComponent(id)}/test`);
  }

  /** A webhook's delivery log. */
  webhookDeliveries(id: string, opts: PageOptions = {}): Promise<DeliveryPage> {
    return this.call("GET", `/v1/webhooks/${encodeURIComponent(id)}/deliveries${query({ ...opts })}`);
  }

  /** Issues an API token (a sender: sender tokens of its tenant); the `secret` is shown once. */
  issueToken(token: NewToken): Promise<IssuedToken> {
    return this.call("POST", "/v1/tokens", token);
  }

  /** The tokens the caller manages (never their secrets). */
  tokens(opts: PageOptions & { tenant?: string } = {}): Promise<TokenPage> {
    return this.call("GET", `/v1/tokens${query({ ...opts })}`);
  }

  /** Revokes a token: refused from its next request on. */
  revokeToken(id: string): Promise<ApiToken> {
    return this.call("DELETE", `/v1/tokens/${encodeURIComponent(id)}`);
  }

  /** The tenant's publishable keys, revoked ones too. */
  publishableKeys(opts: PageOptions & { tenant?: string } = {}): Promise<PublishableKeyPage> {
    return this.call("GET", `/v1/publishable-keys${query({ ...opts })}`);
  }

  /** A publishable key for signup forms on these origins. */
  createPublishableKey(origins: string[]): Promise<PublishableKey> {
    return this.call("POST", "/v1/publishable-keys", { origins });
  }

  /** Revokes a publishable key: signups with it stop at once. */
  async revokePublishableKey(key: string): Promise<void> {
    await this.call("DELETE", `/v1/publishable-keys/${encodeURIComponent(key)}`);
  }
}
