// The consent rules: a faithful port of the Rust SDK's `consent` module (sdk/rust/src/consent.rs),
// checked against it on the golden vectors in sdk/vectors/. The `consent_event` leaf parsed
// strictly (every member known, each of its kind), the status of a purpose, and `apply`: what
// one event changes in a subject's state. An opt-out withdraws its purposes (or all); an opt-in
// grants (pending while it awaits confirmation, and then never taking back a grant); a refusal
// binds every basis, so after it only fresh consent — basis `consent`, claimed later — grants
// again; a confirmation grants what is pending (of the opt-in it names, if it names one). A
// purpose's effective state is the later, by leaf, of its own and the all-purposes state.

export type EventKind = "opt_in" | "opt_out" | "confirm";
export type Basis = "consent" | "address_notified" | "business_relationship" | "address_published";
export type Status = "pending" | "granted" | "withdrawn";

/** A `consent_event` leaf (docs/log-format.md). */
export interface ConsentLeaf {
  type: "consent_event";
  v: 1;
  tenant: string;
  event_id: string;
  subject: string;
  event: EventKind;
  purposes: string[] | "all";
  basis: Basis | null;
  method: string;
  collection_point: string | null;
  received_by: { role: "sender" | "commissioning_party"; name: string };
  occurred_at: string;
  recorded_at: string;
  prev: number | null;
  confirmation_required: boolean;
  evidence_sha256: string | null;
  confirms: string | null;
  /** Imported from a legacy system: counts from its claimed time (absent: false). */
  imported: boolean;
}

/** The time an event counts from (`since`, the retention clock): recorded, or claimed if imported. */
export function countsFrom(leaf: ConsentLeaf): string {
  return leaf.imported ? leaf.occurred_at : leaf.recorded_at;
}

/** A purpose's state and the event that set it. */
export interface PurposeState {
  status: Status;
  basis: Basis | null;
  eventId: string;
  leafIndex: number;
  /** Claimed time, Unix milliseconds. */
  occurredAt: number;
  /** The time it counts from (`countsFrom`), Unix milliseconds: the decision's `since`. */
  recordedAt: number;
}

export type SubjectState = Map<string, PurposeState>;

/** The key of "all purposes". */
export const ALL = "*";
/** The status of a purpose with no event. */
export const NO_STATUS = "none";

const METHODS = ["web_form", "email", "paper", "phone", "in_person", "import", "one_click"];
const BASES = ["consent", "address_notified", "business_relationship", "address_published"];
const MEMBERS = [
  "type", "v", "tenant", "event_id", "subject", "event", "purposes", "basis", "method", "collection_point",
  "received_by", "occurred_at", "recorded_at", "prev", "confirmation_required", "evidence_sha256", "confirms",
  "imported",
];
// Members that may be left out (as the Rust struct's optional ones): null then.
const OPTIONAL = ["basis", "collection_point", "prev", "evidence_sha256", "confirms"];

const isString = (v: unknown): v is string => typeof v === "string";
const nullOr = (v: unknown, ok: (v: unknown) => boolean) => v === null || v === undefined || ok(v);

/** The leaf from its JSON value, or why it is not a consent_event leaf of version 1. */
export function parseConsentLeaf(doc: unknown): ConsentLeaf | string {
  if (typeof doc !== "object" || doc === null || Array.isArray(doc)) return "not a JSON object";
  const d = doc as Record<string, unknown>;
  for (const key of Object.keys(d)) if (!MEMBERS.includes(key)) return `unknown field \`${key}\``;
  for (const key of MEMBERS) if (!(key in d) && !OPTIONAL.includes(key) && key !== "imported") return `missing field \`${key}\``;
  const receiver = d.received_by as Record<string, unknown> | null;
  const checks: [boolean, string][] = [
    [d.type === "consent_event", "type"],
    [d.v === 1, "v"],
    [isString(d.tenant) && isString(d.event_id) && isString(d.subject), "tenant, event_id, subject"],
    [d.event === "opt_in" || d.event === "opt_out" || d.event === "confirm", "event"],
    [d.purposes === "all" || (Array.isArray(d.purposes) && d.purposes.every(isString)), "purposes"],
    [nullOr(d.basis, (b) => BASES.includes(b as string)), "basis"],
    [METHODS.includes(d.method as string), "method"],
    [nullOr(d.collection_point, isString), "collection_point"],
    [typeof receiver === "object" && receiver !== null && !Array.isArray(receiver)
      && Object.keys(receiver).every((k) => k === "role" || k === "name")
      && (receiver.role === "sender" || receiver.role === "commissioning_party") && isString(receiver.name), "received_by"],
    [isString(d.occurred_at) && isString(d.recorded_at), "occurred_at, recorded_at"],
    [nullOr(d.prev, (p) => Number.isSafeInteger(p) && (p as number) >= 0), "prev"],
    [typeof d.confirmation_required === "boolean", "confirmation_required"],
    [nullOr(d.evidence_sha256, isString) && nullOr(d.confirms, isString), "evidence_sha256, confirms"],
    [d.imported === undefined || typeof d.imported === "boolean", "imported"],
  ];
  for (const [ok, what] of checks) if (!ok) return `invalid ${what}`;
  const leaf = { ...d } as Record<string, unknown>;
  for (const key of OPTIONAL) leaf[key] ??= null;
  leaf.imported ??= false;
  return leaf as unknown as ConsentLeaf;
}

/** RFC 3339 as Unix milliseconds (0 if it is not a time, as the Rust port). */
export function millis(text: string): number {
  const t = Date.parse(text);
  return Number.isNaN(t) ? 0 : t;
}

/** The effective state of `purpose`: the later, by leaf, of its own and the all-purposes state. */
export function effective(state: SubjectState, purpose: string): PurposeState | undefined {
  const own = state.get(purpose);
  const all = state.get(ALL);
  if (own && all) return own.leafIndex > all.leafIndex ? own : all;
  return own ?? all;
}

/** Purposes (not ALL) whose effective state is pending, restricted to `only` if given; sorted. */
export function pending(state: SubjectState, only: string[] | null): string[] {
  return [...state.keys()]
    .filter((p) => p !== ALL && (only === null || only.includes(p)))
    .filter((p) => effective(state, p)?.status === "pending")
    .sort();
}

/** What the event at `leafIndex` sets, given the subject's state before it. Pure. */
export function apply(state: SubjectState, leafIndex: number, leaf: ConsentLeaf): [string, PurposeState][] {
  const claimed = millis(leaf.occurred_at);
  const set = (status: Status, basis: Basis | null): PurposeState => ({
    status, basis, eventId: leaf.event_id, leafIndex, occurredAt: claimed, recordedAt: millis(countsFrom(leaf)),
  });
  const list = leaf.purposes === "all" ? null : leaf.purposes;
  if (leaf.event === "opt_in") {
    const changes: [string, PurposeState][] = [];
    for (const purpose of list ?? []) {
      const current = effective(state, purpose);
      if (refusalBinds(current, leaf.basis, claimed)) continue;
      const granted = current?.status === "granted";
      if (leaf.confirmation_required) {
        if (!granted) changes.push([purpose, set("pending", leaf.basis)]);
      } else {
        changes.push([purpose, set("granted", leaf.basis)]);
      }
    }
    return changes;
  }
  if (leaf.event === "opt_out") {
    return list === null ? [[ALL, set("withdrawn", null)]] : list.map((p) => [p, set("withdrawn", null)]);
  }
  return pending(state, list)
    .filter((p) => leaf.confirms === null || state.get(p)?.eventId === leaf.confirms)
    .map((p) => [p, set("granted", state.get(p)?.basis ?? "consent")]);
}

/** A subject's state after its events, in log order, with their leaf indexes. */
export function replay(events: [number, ConsentLeaf][]): SubjectState {
  const state: SubjectState = new Map();
  for (const [leafIndex, leaf] of events) {
    for (const [purpose, changed] of apply(state, leafIndex, leaf)) state.set(purpose, changed);
  }
  return state;
}

/** An `erasure` leaf (docs/log-format.md): a subject's personal data was erased. It is part of the
 * subject's chain and changes no purpose's state: a refusal survives erasure. */
export interface ErasureLeaf {
  type: "erasure";
  v: 1;
  tenant: string;
  subject: string;
  prev: number;
  recorded_at: string;
  retention_days: number;
  evidence_erased: number[];
}

const ERASURE_MEMBERS = ["type", "v", "tenant", "subject", "prev", "recorded_at", "retention_days", "evidence_erased"];
const isIndex = (v: unknown) => Number.isSafeInteger(v) && (v as number) >= 0;

/** The leaf from its JSON value, or why it is not an erasure leaf of version 1. */
export function parseErasureLeaf(doc: unknown): ErasureLeaf | string {
  if (typeof doc !== "object" || doc === null || Array.isArray(doc)) return "not a JSON object";
  const d = doc as Record<string, unknown>;
  for (const key of Object.keys(d)) if (!ERASURE_MEMBERS.includes(key)) return `unknown field \`${key}\``;
  for (const key of ERASURE_MEMBERS) if (!(key in d)) return `missing field \`${key}\``;
  const checks: [boolean, string][] = [
    [d.type === "erasure", "type"],
    [d.v === 1, "v"],
    [isString(d.tenant) && isString(d.subject) && isString(d.recorded_at), "tenant, subject, recorded_at"],
    [isIndex(d.prev) && isIndex(d.retention_days), "prev, retention_days"],
    [Array.isArray(d.evidence_erased) && d.evidence_erased.every(isIndex), "evidence_erased"],
  ];
  for (const [ok, what] of checks) if (!ok) return `invalid ${what}`;
  return d as unknown as ErasureLeaf;
}

/** A `relabel` leaf (docs/log-format.md): the one link of a history begun before the log's VRF key,
 * under a salted commitment (`from`, whose chain head is `prev`), to the address's label (`subject`).
 * It begins the label's chain and closes the commitment; it changes no purpose's state. */
export interface RelabelLeaf {
  type: "relabel";
  v: 1;
  tenant: string;
  subject: string;
  from: string;
  prev: number;
  recorded_at: string;
}

const RELABEL_MEMBERS = ["type", "v", "tenant", "subject", "from", "prev", "recorded_at"];

/** The leaf from its JSON value, or why it is not a relabel leaf of version 1. */
export function parseRelabelLeaf(doc: unknown): RelabelLeaf | string {
  if (typeof doc !== "object" || doc === null || Array.isArray(doc)) return "not a JSON object";
  const d = doc as Record<string, unknown>;
  for (const key of Object.keys(d)) if (!RELABEL_MEMBERS.includes(key)) return `unknown field \`${key}\``;
  for (const key of RELABEL_MEMBERS) if (!(key in d)) return `missing field \`${key}\``;
  const checks: [boolean, string][] = [
    [d.type === "relabel", "type"],
    [d.v === 1, "v"],
    [isString(d.tenant) && isString(d.subject) && isString(d.from) && isString(d.recorded_at), "tenant, subject, from, recorded_at"],
    [isIndex(d.prev), "prev"],
  ];
  for (const [ok, what] of checks) if (!ok) return `invalid ${what}`;
  return d as unknown as RelabelLeaf;
}

/** Records are kept this many days after a subject's last event (one month); a year under a legal hold. */
export const RETENTION_DAYS = 31;
export const RETENTION_LEGAL_HOLD_DAYS = 366;

/** Why the law does not allow erasing a subject at `at` (Unix ms), or null: consent in force for
 * some purpose, or its retention (`retentionUntil`) still running (until when). */
export function erasureRefused(
  state: SubjectState, last: number, retentionDays: number, order: number | null, at: number,
): { consentInForce: string[] } | { retentionUntil: number } | null {
  const granted = [...state.keys()].filter((p) => p !== ALL && effective(state, p)?.status === "granted");
  if (granted.length > 0) return { consentInForce: granted };
  const until = retentionUntil(last, retentionDays, order);
  return at < until ? { retentionUntil: until } : null;
}

/** Until when records must be kept (ordinance Art. 4(2)): a month after the last event, or under a
 * measures order (a year stated, with the order's date at midnight UTC) a year from the order, or
 * that month if later; a year with no order date known runs from the last event. */
export function retentionUntil(last: number, retentionDays: number, order: number | null): number {
  const day = 86_400_000;
  if (order !== null && retentionDays === RETENTION_LEGAL_HOLD_DAYS) {
    return Math.max(order + RETENTION_LEGAL_HOLD_DAYS * day, last + RETENTION_DAYS * day);
  }
  return last + retentionDays * day;
}

/** A `legal_hold` leaf (docs/log-format.md): a tenant's hold put on or lifted, with its order. */
export interface LegalHoldLeaf {
  type: "legal_hold";
  v: 1;
  tenant: string;
  subject: string;
  prev: number | null;
  on: boolean;
  order_date: string;
  order_reference: string;
  recorded_at: string;
}

const HOLD_MEMBERS = ["type", "v", "tenant", "subject", "prev", "on", "order_date", "order_reference", "recorded_at"];

/** The leaf from its JSON value, or why it is not a legal_hold leaf of version 1. */
export function parseLegalHoldLeaf(doc: unknown): LegalHoldLeaf | string {
  if (typeof doc !== "object" || doc === null || Array.isArray(doc)) return "not a JSON object";
  const d = doc as Record<string, unknown>;
  for (const key of Object.keys(d)) if (!HOLD_MEMBERS.includes(key)) return `unknown field \`${key}\``;
  for (const key of HOLD_MEMBERS) if (!(key in d) && key !== "prev") return `missing field \`${key}\``;
  const checks: [boolean, string][] = [
    [d.type === "legal_hold", "type"],
    [d.v === 1, "v"],
    [isString(d.tenant) && isString(d.subject) && isString(d.order_date) && isString(d.order_reference) && isString(d.recorded_at), "strings"],
    [nullOr(d.prev, isIndex), "prev"],
    [typeof d.on === "boolean", "on"],
  ];
  for (const [ok, what] of checks) if (!ok) return `invalid ${what}`;
  return { ...d, prev: d.prev ?? null } as unknown as LegalHoldLeaf;
}

/** The hold in force at leaf `at` (the tenant's latest before it, if on), or null. */
export function holdAt(holds: [number, LegalHoldLeaf][], at: number): LegalHoldLeaf | null {
  const before = holds.filter(([i]) => i < at);
  const latest = before.length > 0 ? before[before.length - 1][1] : null;
  return latest?.on ? latest : null;
}

/** The retention period an erasure at leaf `at` must state: a year if the tenant's latest hold before it is on. */
export function retentionDaysAt(holds: [number, LegalHoldLeaf][], at: number): number {
  return holdAt(holds, at) ? RETENTION_LEGAL_HOLD_DAYS : RETENTION_DAYS;
}

/** A `collection_point_retired` leaf (docs/log-format.md): the end of a version's period of use. */
export interface CollectionPointRetiredLeaf {
  type: "collection_point_retired";
  v: 1;
  tenant: string;
  id: string;
  subject: string;
  prev: null;
  retired_at: string;
}

const RETIRED_MEMBERS = ["type", "v", "tenant", "id", "subject", "prev", "retired_at"];

/** The leaf from its JSON value, or why it is not a collection_point_retired leaf of version 1. */
export function parseRetiredLeaf(doc: unknown): CollectionPointRetiredLeaf | string {
  if (typeof doc !== "object" || doc === null || Array.isArray(doc)) return "not a JSON object";
  const d = doc as Record<string, unknown>;
  for (const key of Object.keys(d)) if (!RETIRED_MEMBERS.includes(key)) return `unknown field \`${key}\``;
  for (const key of RETIRED_MEMBERS) if (!(key in d) && key !== "prev") return `missing field \`${key}\``;
  const ok = d.type === "collection_point_retired" && d.v === 1 && isString(d.tenant) && isString(d.id)
    && isString(d.subject) && isString(d.retired_at) && (d.prev === null || d.prev === undefined);
  return ok ? ({ ...d, prev: null } as unknown as CollectionPointRetiredLeaf) : "invalid members";
}

/** Whether an event at leaf `index` may name a version registered at leaf `registered` and
 * retired at `retiredAt` (Unix ms; null while in use): registered before it, and the event claimed
 * a time before the retirement (as the Rust `in_use`). */
export function inUse(event: ConsentLeaf, index: number, registered: number, retiredAt: number | null): boolean {
  const t = Date.parse(event.occurred_at);
  return registered < index && (retiredAt === null || (!Number.isNaN(t) && t < retiredAt));
}

/** The evidence an opt-in on `basis` must carry (as the Rust `required_evidence`). */
export function requiredEvidence(basis: Basis): string[] {
  switch (basis) {
    case "address_notified": return ["notified_by", "notified_on"];
    case "business_relationship": return ["transaction_reference", "transaction_date"];
    case "address_published": return ["published_in", "published_checked_on", "no_refusal_published"];
    default: return [];
  }
}

/** The item of the Act's Art. 3(1) a basis rests on, as the Rust `Basis::article_item`: (i) prior
 * consent, (ii) an address notified in writing, (iii) a business relationship, (iv) a published
 * address. */
export function articleItem(basis: Basis): number {
  return { consent: 1, address_notified: 2, business_relationship: 3, address_published: 4 }[basis];
}

/** Whether a refusal in force binds an opt-in on `basis` claimed at `claimed` (as the Rust
 * `refusal_binds`): a refusal binds every basis, so only fresh consent claimed after it lifts it. */
function refusalBinds(current: PurposeState | undefined, basis: Basis | null, claimed: number): boolean {
  return current?.status === "withdrawn" && (basis !== "consent" || claimed <= current.occurredAt);
}

/** The purposes of an opt-in that a refusal before it binds (as the Rust `bound_by_refusal`):
 * for them it changes nothing. Empty for other events. */
export function boundByRefusal(state: SubjectState, leaf: ConsentLeaf): string[] {
  if (leaf.event !== "opt_in" || leaf.purposes === "all") return [];
  const claimed = millis(leaf.occurred_at);
  return leaf.purposes.filter((p) => refusalBinds(effective(state, p), leaf.basis, claimed));
}

/** What an event did, given the state before it (as the Rust `evidence::outcomes`): in effect,
 * pending, bound by a refusal (`all`: for every purpose it names), or no change. */
export type Outcome =
  | { kind: "effective" } | { kind: "pending" } | { kind: "no_change" }
  | { kind: "bound"; purposes: string[]; all: boolean };

export function outcome(state: SubjectState, leafIndex: number, leaf: ConsentLeaf): [Outcome, [string, PurposeState][]] {
  const bound = boundByRefusal(state, leaf);
  const changes = apply(state, leafIndex, leaf);
  const result: Outcome = leaf.event === "opt_in" && bound.length > 0
    ? { kind: "bound", purposes: bound, all: changes.length === 0 }
    : changes.length === 0 ? { kind: "no_change" }
    : leaf.event === "opt_in" && leaf.confirmation_required ? { kind: "pending" }
    : { kind: "effective" };
  return [result, changes];
}
