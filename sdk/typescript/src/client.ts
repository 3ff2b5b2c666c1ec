// The server-side client: a sender's secret token records events, asks the send decision
// (single and batch), makes unsubscribe links with their mail headers, and exports evidence.
// Errors are thrown as ConsentLedgerError carrying the RFC 9457 problem. Never use a secret token
// in a browser: pages use bindSignupForm with a publishable key.

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

  private async call<T>(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<T> {
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
      throw new ConsentLedgerError(res.status, problem);
    }
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
}
