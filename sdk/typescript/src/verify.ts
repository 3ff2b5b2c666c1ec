// Offline verification of an evidence bundle (`docs/evidence-format.md`), check for check the
// same as the Rust verifier (`consent-ledger verify evidence`), with the same item names:
// checkpoint signature, leaf hashes, inclusion proofs, tlog-proof@v1 text, the opening, the
// per-address chain, completeness (the subject map), templates, decisions replayed from the
// events, and optionally consistency with a trusted checkpoint and a witness quorum (tlog-policy).

import { normalizeAddress } from "./address.js";
import { collectionPointKey, commitment, holdKey, parametersKey, parametersPublicKey, verifyLabel } from "./label.js";
import {
  bytes, canonicalJson, equal, fromBase64, fromHex, Hash, leafHash, sha256, toHex,
} from "./crypto.js";
import {
  ALL, ConsentLeaf, countsFrom, effective, holdAt, inUse, parseRetiredLeaf, requiredEvidence, ErasureLeaf, erasureRefused, LegalHoldLeaf, NO_STATUS, parseConsentLeaf,
  parseErasureLeaf, parseLegalHoldLeaf, parseRelabelLeaf, RelabelLeaf, replay, RETENTION_DAYS, RETENTION_LEGAL_HOLD_DAYS, retentionDaysAt,
  SubjectState,
} from "./consent.js";
import { verifyConsistency, verifyInclusion } from "./merkle.js";
import { Checkpoint, checkQuorum, cosignedTimes, keyMaterial, parsePolicy, verifyCheckpoint } from "./note.js";
import type { components } from "./openapi.js";

export type Bundle = components["schemas"]["Bundle"];
export type ProvenLeaf = components["schemas"]["ProvenLeaf"];
export type PurposeDecision = components["schemas"]["PurposeDecision"];
export type ProvenDecision = components["schemas"]["ProvenDecision"];

/** One verified claim. */
export interface Item {
  what: string;
  ok: boolean;
  detail: string;
}

/** The verdict, item by item. */
export interface Report {
  items: Item[];
  notes: string[];
  /** True when every item holds (and there is at least one). */
  passed: boolean;
}

/** Options: a checkpoint already trusted (with the consistency proof to it), a tlog-policy. */
export interface VerifyOptions {
  trusted?: { checkpoint: string; consistency: string[]; allowOlder?: boolean };
  /** tlog-policy text: the witness quorum the bundle's checkpoint needs. */
  policy?: string;
  /** The address the bundle must be of (normalised here as the service keeps it, by the same
   * rule as the Rust verifier's `check_address`): a look-alike's history is complete and valid,
   * but not this one. */
  email?: string;
}

const FORMAT = "consent-ledger/evidence/v1";
const TLOG_PROOF_HEADER = "c2sp.org/tlog-proof@v1";
const BUCKETS = 65536n;

type Json = Record<string, unknown>;

function hashes(list: unknown): Hash[] | null {
  if (!Array.isArray(list)) return null;
  const out = list.map((h) => (typeof h === "string" ? fromBase64(h) : null));
  return out.every((h) => h && h.length === 32) ? (out as Hash[]) : null;
}

function parseTlogProof(text: string): { index: bigint; path: Hash[]; checkpoint: string } | null {
  const at = text.indexOf("\n\n");
  if (at < 0) return null;
  const lines = text.slice(0, at).split("\n");
  if (lines[0] !== TLOG_PROOF_HEADER) return null;
  let i = 1;
  if (lines[i]?.startsWith("extra ")) {
    if (!fromBase64(lines[i].slice(6))) return null;
    i++;
  }
  const m = /^index (0|[1-9][0-9]*)$/.exec(lines[i] ?? "");
  if (!m) return null;
  const path = hashes(lines.slice(i + 1));
  if (!path || path.length > 63) return null;
  return { index: BigInt(m[1]), path, checkpoint: text.slice(at + 2) };
}

/** Verifies an evidence bundle (parsed JSON, or its text) against the log's verifier key. */
/**
 * JSON.parse for the documents verified here, refusing a number written with a fraction or an
 * exponent (`49.0`, `49e0`): the Rust verifier reads their numbers as integers and refuses such
 * texts, so both verifiers refuse the same ones. (Given an object instead of text, the written
 * form is gone: pass the text to get the same verdict.)
 */
function parseDocument(text: string): Json {
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (inString) {
      if (c === "\\") i++;
      else if (c === '"') inString = false;
    } else if (c === '"') {
      inString = true;
    } else if (c === "." || ((c === "e" || c === "E") && i > 0 && text[i - 1] >= "0" && text[i - 1] <= "9")) {
      throw new Error(`a number is written with a fraction or an exponent at character ${i}; numbers here are integers`);
    }
  }
  return JSON.parse(text);
}

export async function verifyEvidence(
  input: Bundle | string,
  vkey: string,
  options: VerifyOptions = {},
): Promise<Report> {
  try {
    const report = await verifyUnchecked(input, vkey, options);
    if (options.email !== undefined) {
      const given = (typeof input === "string" ? (parseDocument(input) as unknown as Bundle) : input)?.subject?.email;
      const asked = normalizeAddress(options.email);
      const ok = "address" in asked && given === asked.address;
      report.items.push({
        what: "subject: the address asked about",
        ok,
        detail: !("address" in asked) ? `${JSON.stringify(options.email)} is not an address: ${asked.error}`
          : ok ? `the bundle is of ${asked.address}` : typeof given === "string"
          ? `the bundle is of ${JSON.stringify(given)}, not of ${JSON.stringify(asked.address)}` : "the bundle names no address",
      });
      report.passed = report.passed && ok;
    }
    return report;
  } catch (e) {
    // A bundle missing members, or a value of the wrong type: a verdict, never an exception.
    return {
      items: [{ what: "bundle", ok: false, detail: `not an evidence bundle: ${(e as Error).message ?? e}` }],
      notes: [],
      passed: false,
    };
  }
}

async function verifyUnchecked(input: Bundle | string, vkey: string, options: VerifyOptions): Promise<Report> {
  const items: Item[] = [];
  const notes: string[] = [];
  const check = (what: string, ok: boolean, detail = "") => {
    items.push({ what, ok, detail });
    return ok;
  };
  const done = () => ({ items, notes, passed: items.length > 0 && items.every((i) => i.ok) });
  let bundle: Bundle;
  try {
    bundle = typeof input === "string" ? (parseDocument(input) as unknown as Bundle) : input;
  } catch (e) {
    check("bundle", false, `not an evidence bundle: ${e}`);
    return done();
  }
  if (!check("format", bundle?.format === FORMAT, `expected ${FORMAT}, found ${bundle?.format}`)) {
    return done();
  }
  let cp: Checkpoint;
  try {
    cp = await verifyCheckpoint(bundle.checkpoint, vkey);
    check("checkpoint", true, `signed by ${cp.origin}, size ${cp.size}`);
  } catch (e) {
    check("checkpoint", false, String((e as Error).message ?? e));
    return done();
  }
  if (options.trusted) await checkTrusted(check, vkey, cp, options.trusted);
  if (options.policy !== undefined) await checkWitnessed(check, notes, bundle, vkey, cp, options.policy);
  notes.push(guarantees(options.trusted, options.policy !== undefined));

  const checkLeaf = (what: string, leaf: ProvenLeaf) => provenLeaf(check, what, leaf, cp, bundle.checkpoint);

  // The subject map: the checkpoint's last leaf, covering every leaf before it.
  const c = bundle.completeness;
  let root: Hash | null = null;
  if (check("subject map: is the checkpoint's last leaf", BigInt(c.map_leaf.leaf_index) === cp.size - 1n, `leaf ${c.map_leaf.leaf_index} of ${cp.size}`)) {
    const doc = await checkLeaf("subject map", c.map_leaf);
    const stated = typeof doc?.root === "string" ? fromHex(doc.root) : null;
    const leafOk = !!doc && doc.type === "subject_map" && doc.v === 1 && doc.covers === c.map_leaf.leaf_index && stated?.length === 32;
    if (doc && check("subject map: leaf", leafOk)) root = stated;
  }

  // The log's VRF key: its one parameters leaf, as the map states it.
  let logKey: LogKey = undefined;
  if (root) logKey = await checkParameters(check, checkLeaf, bundle, root);

  // The opening: the label by its VRF proof (a history from before labels is shown through its
  // relabel leaf, under the label).
  const subjectKey = bundle.subject.commitment;
  if (bundle.subject.vrf_proof != null) {
    const proof = fromBase64(bundle.subject.vrf_proof);
    const label = logKey && proof ? await verifyLabel(logKey.key, bundle.tenant.id, bundle.subject.email, proof) : null;
    const ok = label === bundle.subject.commitment;
    check(
      "subject label",
      ok,
      ok ? `${bundle.subject.email} has the label ${label} under the log's VRF key: its only label`
        : label ? `the VRF proof gives ${bundle.subject.email} the label ${label}, not ${bundle.subject.commitment}`
        : "the VRF proof does not verify under the log's VRF key",
    );
  } else {
    check(
      "subject label",
      false,
      "the bundle names the subject by a salted commitment, not by its label: a history begun before the log's " +
        "VRF key is shown only through its relabel leaf, under the label (a bundle from before the relabelling: " +
        "ask the operator for a new one)",
    );
  }

  // The chain's leaves (events, erasures, at most one relabelling): proofs, ownership, chain. The
  // leaves before a relabelling name its salted commitment.
  const documents: [number, ConsentLeaf][] = [];
  const erasures: [number, ErasureLeaf][] = [];
  let relabel: [number, RelabelLeaf] | null = null;
  const relabels: [number, string][] = [];
  for (const [n, event] of bundle.events.entries()) {
    const parsed = parseRelabelLeaf(leafJson(event.leaf));
    if (typeof parsed !== "string") relabels.push([n, parsed.from]);
  }
  if (relabels.length > 1) {
    check("relabelling", false, `the chain holds ${relabels.length} relabel leaves: a history is relabelled once`);
  }
  let previous: number | null = null;
  let previousRecorded: number | null = null;
  for (const [n, event] of bundle.events.entries()) {
    const what = `event ${n} (leaf ${event.leaf_index})`;
    const doc = await checkLeaf(what, event);
    if (!doc) continue;
    const leaf = parseConsentLeaf(doc);
    const erasure = typeof leaf === "string" ? parseErasureLeaf(doc) : null;
    const relabelled = typeof erasure === "string" ? parseRelabelLeaf(doc) : null;
    if (typeof leaf === "string" && typeof erasure === "string" && typeof relabelled === "string") {
      check(`${what}: is a consent_event or erasure leaf`, false,
        `as a consent_event leaf: ${leaf}; as an erasure leaf: ${erasure}; as a relabel leaf: ${relabelled}`);
      continue;
    }
    const owner = (typeof leaf !== "string" ? leaf : typeof erasure !== "string" ? erasure : relabelled) as
      ConsentLeaf | ErasureLeaf | RelabelLeaf;
    const expected = relabels.length > 0 && n < relabels[0][0] ? relabels[0][1] : subjectKey;
    check(
      `${what}: names this tenant and subject`,
      owner.tenant === bundle.tenant.id && owner.subject === expected,
    );
    const prev = owner.prev;
    const chainOk = prev === previous && (previous === null || previous < event.leaf_index);
    check(`${what}: chain`, chainOk, chainOk ? "" : `its prev is ${prev}, the event before it is ${previous}: an event is missing`);
    // The log's clock runs forward along a chain (within the grace for its clock).
    const recorded = strictMillis(owner.recorded_at);
    if (recorded !== null && previousRecorded !== null && recorded + TIME_GRACE_MS < previousRecorded) {
      check(`${what}: recorded after the leaf before it`, false, `recorded at ${iso(recorded)}, but the leaf before it at ${iso(previousRecorded)}`);
    }
    previousRecorded = recorded ?? previousRecorded;
    previous = event.leaf_index;
    if (typeof leaf !== "string") documents.push([event.leaf_index, leaf]);
    else if (typeof erasure !== "string") erasures.push([event.leaf_index, erasure as ErasureLeaf]);
    else relabel ??= [event.leaf_index, relabelled as RelabelLeaf];
  }

  // The tenant's legal holds: its hold chain, complete by the subject map.
  let holds: [number, LegalHoldLeaf][] | null = null;
  if (root && bundle.holds) {
    const key = await holdKey(bundle.tenant.id);
    const keyHex = toHex(key);
    let allOk = true;
    const leaves: [number, LegalHoldLeaf][] = [];
    let before: number | null = null;
    for (const [n, proven] of bundle.holds.leaves.entries()) {
      const what = `legal hold ${n} (leaf ${proven.leaf_index})`;
      const doc = await checkLeaf(what, proven);
      if (!doc) { allOk = false; continue; }
      const leaf = parseLegalHoldLeaf(doc);
      const ok = typeof leaf !== "string" && leaf.tenant === bundle.tenant.id && leaf.subject === keyHex &&
        leaf.prev === before && (before === null || before < proven.leaf_index);
      allOk = check(`${what}: the tenant's, after the one before`, ok, typeof leaf === "string" ? leaf : `${leaf.on ? "put" : "lifted"} on ${leaf.order_date}`) && allOk;
      before = proven.leaf_index;
      if (typeof leaf !== "string") leaves.push([proven.leaf_index, leaf]);
    }
    const value = await mapValue(root, key, bundle.holds.bucket, bundle.holds.bucket_entries, bundle.holds.bucket_path);
    const complete = value.ok && value.latest === before;
    allOk = check("legal holds: complete", complete, !value.ok ? value.error : `the map names ${value.latest} as the latest hold`) && allOk;
    if (allOk) holds = leaves;
  }

  // Erasures: the law allowed each (no consent in force, its retention period run since the last
  // event before it), and the evidence each says it erased is of events before it.
  for (const [index, erasure] of erasures) {
    const what = `erasure at leaf ${index}`;
    const due = holds === null ? null : retentionDaysAt(holds, index);
    check(
      `${what}: its retention period follows the legal holds`,
      due !== null && erasure.retention_days >= due,
      due === null ? "the bundle does not prove the tenant's legal holds" : `the tenant's legal holds give ${due} days; it states ${erasure.retention_days}`,
    );
    const before = documents.filter(([i]) => i < index);
    const recorded = before.map(([, leaf]) => strictMillis(countsFrom(leaf))).filter((t): t is number => t !== null);
    const last = recorded.length > 0 ? Math.max(...recorded) : null;
    const at = strictMillis(erasure.recorded_at);
    // A measures order's year runs from the order (ordinance Art. 4(2)).
    const hold = holds === null ? null : holdAt(holds, index);
    const order = hold && hold.order_date.length === 10 ? strictMillis(`${hold.order_date}T00:00:00Z`) : null;
    let allowed = false;
    let detail: string;
    if (erasure.retention_days !== RETENTION_DAYS && erasure.retention_days !== RETENTION_LEGAL_HOLD_DAYS) {
      detail = `it states a retention of ${erasure.retention_days} days, not ${RETENTION_DAYS} or ${RETENTION_LEGAL_HOLD_DAYS}`;
    } else if (last === null || at === null) {
      detail = "its time, or the last event's, is not RFC 3339";
    } else {
      const refused = erasureRefused(replay(before), last, erasure.retention_days, order, at);
      allowed = refused === null;
      detail = refused === null ? `${erasure.recorded_at}, after ${erasure.retention_days} days without consent in force`
        : "consentInForce" in refused ? `consent was in force for ${refused.consentInForce.join(", ")}`
        : `recorded ${erasure.recorded_at}, but the retention period ran until ${iso(refused.retentionUntil)}`;
    }
    check(`${what}: the law allowed it`, allowed, detail);
    const ascending = erasure.evidence_erased.every((e, i, all) => i === 0 || all[i - 1] < e);
    const namedOk = ascending && erasure.evidence_erased.every((e) => before.some(([i, leaf]) => i === e && leaf.evidence_sha256 !== null));
    check(`${what}: erased the evidence of earlier events`, namedOk, `leaves ${JSON.stringify(erasure.evidence_erased)}`);
  }

  // The evidence in the opening: each of one event, once, hashing with the salt to what its leaf commits to.
  const salt = fromBase64(bundle.subject.salt) ?? new Uint8Array();
  const seen = new Set<number>();
  for (const given of bundle.subject.evidence ?? []) {
    const n = documents.findIndex(([i]) => i === given.leaf_index);
    if (n < 0 || seen.has(given.leaf_index)) {
      check(`evidence of leaf ${given.leaf_index}`, false, "names no event of the bundle, or one named before");
      continue;
    }
    seen.add(given.leaf_index);
    const value = given.evidence as Json;
    const isObject = typeof value === "object" && value !== null && !Array.isArray(value);
    const hash = isObject && integersOnly(value) ? toHex(await sha256(salt, bytes(canonicalJson(value)))) : null;
    const stated = documents[n][1].evidence_sha256;
    const ok = hash !== null && hash === stated;
    check(`event ${n}: evidence`, ok, ok ? JSON.stringify(value) : `with the salt it hashes to ${hash ?? "nothing (not a JSON object)"}, the leaf commits to ${stated ?? "none"}`);
  }
  const erased = new Set(erasures.flatMap(([, e]) => e.evidence_erased));
  const unshown = documents.filter(([i, leaf]) => leaf.evidence_sha256 !== null && !seen.has(i));
  const erasedCount = unshown.filter(([i]) => erased.has(i)).length;
  if (erasedCount > 0) notes.push(`${erasedCount} event(s) committed to evidence that an erasure leaf of the log says was erased: how they were given is no longer shown`);
  const missing = unshown.length - erasedCount;
  if (missing > 0) notes.push(`${missing} event(s) committed to evidence the bundle does not carry (erased, or withheld): how they were given is not shown`);

  // Notes: imported events (their times are the sender's word), and exception-basis opt-ins whose
  // evidence does not show the facts their basis rests on (as the Rust note_exceptions).
  documents.forEach(([index, leaf], n) => {
    if (leaf.imported) notes.push(`event ${n} (leaf ${index}): imported; it claims ${leaf.occurred_at} and was recorded ${leaf.recorded_at}`);
    if (leaf.event !== "opt_in" || leaf.basis === null) return;
    const given = (bundle.subject.evidence ?? []).find((e) => e.leaf_index === index)?.evidence as Json | undefined;
    const lacking = requiredEvidence(leaf.basis).filter((f) => given === undefined || given[f] === undefined || given[f] === null);
    if (lacking.length > 0) notes.push(`event ${n} (leaf ${index}): an opt-in on basis ${leaf.basis} whose evidence does not show ${lacking.join(", ")}`);
  });

  // A relabelling: its salted commitment opens with the address and salt (unless the address was
  // erased after it), its history began before the log's VRF key, and the map names its prev as
  // the commitment's latest leaf (nothing named it after).
  if (root && relabel) {
    const [index, r] = relabel;
    const what = `relabelling at leaf ${index}`;
    const opened = await commitment(bundle.tenant.id, bundle.subject.email, salt);
    const erasedAfter = erasures.some(([e]) => e > index);
    check(
      `${what}: the salted commitment is this address's`,
      opened === r.from || erasedAfter,
      opened === r.from ? `${bundle.subject.email} with its salt opens ${r.from}`
        : erasedAfter ? `${r.from} cannot be opened: the salt was erased with the address after the relabelling`
        : `address and salt give ${opened}, not ${r.from}`,
    );
    if (logKey && bundle.events.length > 0) {
      const first = bundle.events[0].leaf_index;
      check(`${what}: the older history began before the log's VRF key`, first < logKey.index,
        `its history begins at leaf ${first}, the log's VRF key at leaf ${logKey.index}`);
    }
    const proof = bundle.relabelled;
    if (!proof) {
      check(`${what}: the salted commitment is closed`, false, "the bundle does not prove what the subject map says of the salted commitment");
    } else {
      const value = await mapValue(root, fromHex(r.from) ?? new Uint8Array(32), proof.bucket, proof.bucket_entries, proof.bucket_path);
      const ok = value.ok && value.latest === r.prev;
      check(`${what}: the salted commitment is closed`, ok,
        !value.ok ? value.error : ok ? `the map names leaf ${value.latest}, the relabel's prev, as its latest`
          : `the map names ${value.latest} as its latest leaf, not the relabel's prev ${r.prev}: a leaf named the salted commitment after the relabelling`);
    }
  }

  // Completeness: the subject map names the bundle's last event as the latest.
  if (root) {
    const value = await mapValue(root, fromHex(subjectKey) ?? new Uint8Array(32), c.bucket, c.bucket_entries, c.bucket_path);
    check(
      "complete: no event of this address is missing",
      value.ok && value.latest === previous,
      !value.ok ? value.error : value.latest === previous ? `the map names leaf ${value.latest} as the latest event` : `the map names ${value.latest} as the latest event, but the bundle ends at ${previous}: events are missing`,
    );
  }

  // Templates: content and id, and the period of use (registration leaf; retirement leaf, if the
  // map names one, and the map's bucket proving there is no other); each event's was in use.
  // Per valid template: its registration leaf, and its retirement time (null: in use;
  // undefined: the bundle does not prove the period).
  const templates = new Map<string, [number, number | null | undefined]>();
  for (const t of bundle.collection_points) {
    const what = `collection point ${t.id}`;
    const doc = await checkLeaf(what, t.proof);
    if (!doc) continue;
    const content = fromBase64(t.content) ?? new Uint8Array();
    const contentSha = toHex(await sha256(content));
    const described = {
      tenant: doc.tenant ?? null, name: doc.name ?? null, channel: doc.channel ?? null,
      content_type: doc.content_type ?? null, content_sha256: doc.content_sha256 ?? null,
      sender_name_shown: doc.sender_name_shown ?? null, prechecked: doc.prechecked ?? null,
      language: doc.language ?? null,
    };
    const id = toHex(await sha256(bytes(canonicalJson(described))));
    const ok = doc.type === "collection_point" && doc.tenant === bundle.tenant.id && doc.content_type === t.content_type &&
      doc.content_sha256 === contentSha && doc.id === t.id && id === t.id;
    check(`${what}: content and id`, ok, ok ? `${content.length} bytes of ${t.content_type}` : "the content or the id does not match its leaf");
    if (!t.retirement) {
      notes.push(`${what}: the bundle does not prove its period of use (no map bucket for its retirement key: a bundle made before periods were proven); ask for a new one`);
      if (ok) templates.set(t.id, [t.proof.leaf_index, undefined]);
      continue;
    }
    const period = await templatePeriod(check, checkLeaf, bundle, root, t, what);
    if (ok && period !== undefined) {
      check(`${what}: its period of use`, true, period === null ? `from ${doc.registered_at}, in use at the checkpoint` : `from ${doc.registered_at} to ${iso(period)}`);
      templates.set(t.id, [t.proof.leaf_index, period]);
    }
  }
  documents.forEach(([index, leaf], n) => {
    if (leaf.collection_point === null) return;
    const found = templates.get(leaf.collection_point);
    check(`event ${n}: its collection point is in the bundle`, found !== undefined, leaf.collection_point);
    if (found === undefined || found[1] === undefined) return;
    const [registered, retired] = found;
    check(`event ${n}: its collection point was in use`, inUse(leaf, index, registered, retired),
      retired === null ? `${leaf.collection_point}, registered at leaf ${registered}, not retired` : `${leaf.collection_point}, retired ${iso(retired)}; the event claims ${leaf.occurred_at}`);
  });

  check("events", bundle.events.length > 0, `${bundle.events.length} event(s) of this address`);
  const states = replay(documents);
  for (const purpose of states.keys()) {
    if (purpose === ALL) continue;
    const listed = bundle.decisions.filter((d) => d.purpose === purpose).length;
    check(`decision for ${purpose} is given`, listed === 1, `the bundle lists it ${listed} time(s)`);
  }
  notes.push(`decisions and history are as of tree size ${cp.size}: an event recorded later is not covered`);
  for (const given of bundle.decisions) {
    const expected = decision(states, given.purpose);
    const same = expected.may_send === given.may_send && expected.status === given.status && (expected.event_id ?? null) === (given.event_id ?? null);
    check(`decision for ${given.purpose}`, same, same ? `may_send ${given.may_send} (${given.status})` : `the events give may_send ${expected.may_send} (${expected.status}), the bundle says ${given.may_send} (${given.status})`);
  }
  await checkTimes(check, notes, bundle, vkey, cp, options.policy, documents, erasures);
  return done();
}

/** How far an event's times may lie outside what the witnesses saw (as the Rust verifier). */
export const TIME_GRACE_MS = 5 * 60 * 1000;
const BACKDATED_MS = 24 * 60 * 60 * 1000;

type Template = Bundle["collection_points"][number];

/** A template's end of use as the bundle proves it (as the Rust template_period): null in use at
 * the checkpoint, its retired_at if retired by then, undefined when not proven. */
async function templatePeriod(
  check: (what: string, ok: boolean, detail?: string) => boolean,
  checkLeaf: (what: string, leaf: ProvenLeaf) => Promise<Json | null>,
  bundle: Bundle, root: Hash | null, t: Template, what: string,
): Promise<number | null | undefined> {
  const key = await collectionPointKey(bundle.tenant.id, t.id);
  let retired: [number, number] | null = null;
  if (t.retired) {
    const name = `${what}: its retirement`;
    if (!(await checkLeaf(name, t.retired))) return undefined;
    const leaf = parseRetiredLeaf(parseDocument(new TextDecoder().decode(fromBase64(t.retired.leaf) ?? new Uint8Array())));
    const at = typeof leaf !== "string" && leaf.tenant === bundle.tenant.id && leaf.id === t.id && leaf.subject === toHex(key)
      ? strictMillis(leaf.retired_at) : null;
    if (!check(`${name}: this version's collection_point_retired leaf`, at !== null, `leaf ${t.retired.leaf_index}`) || at === null) return undefined;
    retired = [t.retired.leaf_index, at];
  }
  const b = t.retirement;
  const named = root && b ? await mapValue(root, key, b.bucket, b.bucket_entries, b.bucket_path)
    : { ok: false as const, error: "no subject map to prove its period of use against" };
  const complete = named.ok && named.latest === (retired === null ? null : retired[0]);
  check(`${what}: its retirement, complete`, complete, named.ok ? `the map names ${named.latest} as its retirement` : named.error);
  return complete ? (retired === null ? null : retired[1]) : undefined;
}

const iso = (ms: number) => new Date(ms).toISOString().replace(".000Z", "Z");


/**
 * Time bounds from the witnesses (with a policy), as the Rust verifier's check_times: no event's
 * times after the latest cosignature on the witnessed checkpoint, and none recorded before the
 * earliest cosignature on the latest witnessed tree without it (`earlier`), within TIME_GRACE_MS.
 * Events claimed long before they were recorded are noted as back-dated.
 */
async function checkTimes(
  check: Check, notes: string[], bundle: Bundle, vkey: string, cp: Checkpoint, policyText: string | undefined,
  documents: [number, ConsentLeaf][], erasures: [number, ErasureLeaf][],
) {
  const times: Timed[] = [];
  const malformed: string[] = [];
  documents.forEach(([index, leaf], n) => {
    const what = `event ${n} (leaf ${index})`;
    const occurred = strictMillis(leaf.occurred_at);
    const recorded = strictMillis(leaf.recorded_at);
    if (occurred === null || recorded === null) malformed.push(what);
    else times.push({ what, index, occurred, recorded });
  });
  if (malformed.length > 0) {
    check("time: every time is RFC 3339", false, `not YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM): ${malformed.join(", ")}`);
  }
  for (const t of times) {
    if (t.recorded - t.occurred > BACKDATED_MS) {
      notes.push(`${t.what}: claimed to have occurred at ${iso(t.occurred)}, ${Math.floor((t.recorded - t.occurred) / BACKDATED_MS)} day(s) before it was recorded (${iso(t.recorded)}): back-dated`);
    }
  }
  // An erasure's time is bounded as an event's is: its retention period is counted to it.
  for (const [index, erasure] of erasures) {
    const what = `erasure at leaf ${index}`;
    const at = strictMillis(erasure.recorded_at);
    if (at === null) check("time: every time is RFC 3339", false, `not YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM): ${what}`);
    else times.push({ what, index, occurred: at, recorded: at });
  }
  times.sort((a, b) => a.index - b.index);
  if (policyText === undefined) {
    if (bundle.witnessed) notes.push("the witnesses' cosignature times bound the events' times only with --policy (their keys)");
    return;
  }
  await checkTimeBounds(check, notes, "time", bundle, vkey, cp, policyText, times);
}

const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$/;

/** Unix milliseconds of a time written as the Rust verifier's strict_millis reads it, or null:
 * the calendar's dates only (no 30 February, no hour 24, no leap second), as Rust's `time` reads them. */
export function strictMillis(text: unknown): number | null {
  if (typeof text !== "string" || !RFC3339.test(text)) return null;
  const n = (from: number, to: number) => Number(text.slice(from, to));
  const [year, month, day, hour, minute, second] = [n(0, 4), n(5, 7), n(8, 10), n(11, 13), n(14, 16), n(17, 19)];
  const leap = (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0;
  const days = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month - 1] ?? 0;
  if (month < 1 || month > 12 || day < 1 || day > days || hour > 23 || minute > 59 || second > 59) return null;
  const zone = text.match(/([+-])(\d{2}):(\d{2})$/);
  if (zone && (Number(zone[2]) > 23 || Number(zone[3]) > 59)) return null;
  const t = Date.parse(text);
  return Number.isNaN(t) ? null : t;
}

/** Something whose times the witnesses bound: an event, or a campaign leaf. */
interface Timed { what: string; index: number; occurred: number; recorded: number }

/** The witnesses' bounds on `times` (items named `<prefix>: …`), as checkTimes says. */
async function checkTimeBounds(
  check: Check, notes: string[], prefix: string, bundle: Bundle, vkey: string, cp: Checkpoint, policyText: string, times: Timed[],
) {
  let policy;
  try {
    policy = await parsePolicy(policyText);
  } catch {
    return; // reported by checkWitnessed
  }
  // The witnessed prefixes: the earliest cosignature on one bounds from below the leaves it
  // lacks; the latest, with the policy's quorum, bounds from above the leaves it holds.
  const earlier: [bigint, number, string, [string, number] | null][] = [];
  let unnamed = 0;
  for (const e of bundle.earlier ?? []) {
    let before: Checkpoint | null = null;
    try {
      before = await verifyCheckpoint(e.checkpoint, vkey);
    } catch {
      before = null;
    }
    const proof = hashes(e.consistency);
    const consistent = !before || before.size > cp.size || before.size === 0n ? false
      : before.size === cp.size ? equal(before.root, cp.root) && e.consistency.length === 0
        : !!proof && (await verifyConsistency(before.size, cp.size, before.root, cp.root, proof));
    const cosigned = await cosignedTimes(policy, e.checkpoint);
    if (before && consistent && cosigned.length > 0) {
      const [name, t] = cosigned.reduce((a, b) => (b[1] < a[1] ? b : a));
      const quorum = (await checkQuorum(policy, e.checkpoint)).satisfied;
      earlier.push([before.size, t, name, quorum ? cosigned.reduce((a, b) => (b[1] > a[1] ? b : a)) : null]);
    } else if (before && consistent) {
      unnamed++; // cosigned by witnesses the policy does not name: no bound, and nothing false
    } else {
      check(`${prefix}: earlier witnessed checkpoint`, false, "not the log's, or not a prefix of the bundle's checkpoint");
    }
  }
  if (unnamed > 0) notes.push(`${prefix}: ${unnamed} earlier checkpoint(s) cosigned by no witness of the policy: no bound from them`);
  // No later than: the earliest witnessed tree that holds the event, by the latest cosignature
  // of the policy's quorum on it. The witnessed checkpoint and the bundle's own checkpoint (if it
  // carries the quorum) hold them all, so every event has a bound.
  const quorumTime = async (text: string): Promise<[string, number] | null> => {
    let tree: Checkpoint | null = null;
    try {
      tree = await verifyCheckpoint(text, vkey);
    } catch {
      return null;
    }
    const cosigned = await cosignedTimes(policy, text);
    if (tree.size < cp.size || !(await checkQuorum(policy, text)).satisfied || cosigned.length === 0) return null;
    return cosigned.reduce((a, b) => (b[1] > a[1] ? b : a));
  };
  const bounds = [bundle.witnessed ? await quorumTime(bundle.witnessed.checkpoint) : null, await quorumTime(bundle.checkpoint)]
    .filter((b): b is [string, number] => b !== null);
  const latest = bounds.length > 0 ? bounds.reduce((a, b) => (b[1] < a[1] ? b : a)) : null;
  const late: string[] = [];
  const unboundedAbove: string[] = [];
  let boundedAbove: [string, number] | null = null;
  for (const t of times) {
    const candidates = earlier
      .filter(([size]) => size > BigInt(t.index))
      .map(([, , , last]) => last)
      .filter((l): l is [string, number] => l !== null);
    if (latest) candidates.push(latest);
    if (candidates.length === 0) {
      unboundedAbove.push(t.what);
      continue;
    }
    const [name, seconds] = candidates.reduce((a, b) => (b[1] < a[1] ? b : a));
    const bound = seconds * 1000;
    if (t.recorded > bound + TIME_GRACE_MS) late.push(`${t.what} claims ${iso(t.recorded)}, after witness ${name} saw it, at ${iso(bound)}`);
    if (!boundedAbove || seconds > boundedAbove[1]) boundedAbove = [name, seconds];
  }
  // A quorum that needs no witness (`quorum none`) bounds nothing, and claims nothing.
  const needsWitnesses = !((await checkQuorum(policy, bundle.checkpoint)).satisfied && (await cosignedTimes(policy, bundle.checkpoint)).length === 0);
  if (unboundedAbove.length > 0 && needsWitnesses) {
    check(`${prefix}: every event bounded by a tree the witnesses cosigned`, false, `no checkpoint cosigned by the policy's quorum holds ${unboundedAbove.join(", ")}`);
  }
  if (boundedAbove) {
    check(`${prefix}: no event claims a time after the witnesses saw it`, late.length === 0, late.length === 0
      ? `each recorded no later than a tree the witnesses cosigned; the last by ${iso(boundedAbove[1] * 1000)} (witness ${boundedAbove[0]})`
      : late.join("; "));
  }
  let bounded = 0;
  const early: string[] = [];
  const unbounded: string[] = [];
  for (const t of times) {
    const candidates = earlier.filter(([size]) => size <= BigInt(t.index));
    if (candidates.length === 0) {
      unbounded.push(t.what);
      continue;
    }
    const [size, seconds, name] = candidates.reduce((a, b) => (b[0] > a[0] ? b : a));
    bounded++;
    const bound = seconds * 1000;
    if (t.recorded < bound - TIME_GRACE_MS) {
      early.push(`${t.what} says recorded ${iso(t.recorded)}, but witness ${name} cosigned a tree of ${size} leaves without it at ${iso(bound)}`);
    }
  }
  if (unbounded.length > 0) {
    notes.push(`${prefix}: not bounded from below (the bundle carries no witnessed checkpoint without it; an auditing witness refuses back-dated leaves itself): ${unbounded.join(", ")}`);
  }
  if (bounded > 0) {
    check(`${prefix}: no event recorded before the witnesses saw a tree without it`, early.length === 0, early.length === 0
      ? `${bounded} event(s) bounded from below by a witnessed checkpoint`
      : early.join("; "));
  }
}

type Check = (what: string, ok: boolean, detail?: string) => boolean;

/** A leaf with its proof against `cp` (whose note is `note`): hash, inclusion, tlog-proof@v1, canonical JSON; its document when all hold. */
async function provenLeaf(check: Check, what: string, leaf: ProvenLeaf, cp: Checkpoint, note: string): Promise<Json | null> {
  const data = fromBase64(leaf.leaf);
  if (!data) {
    check(`${what}: leaf`, false, "not base64");
    return null;
  }
  // An index every JSON reader reads alike (RFC 7493 I-JSON), as the Rust verifier requires.
  if (!Number.isSafeInteger(leaf.leaf_index) || leaf.leaf_index < 0) {
    check(`${what}: leaf index`, false, `${leaf.leaf_index} is beyond 2^53 − 1, which not every JSON reader reads exactly (RFC 7493)`);
    return null;
  }
  const hash = await leafHash(data);
  if (!check(`${what}: leaf hash`, equal(hash, fromBase64(leaf.leaf_hash)), "RFC 9162 hash of the leaf bytes")) {
    return null;
  }
  const path = hashes(leaf.inclusion_proof);
  const included = !!path && (await verifyInclusion(hash, leaf.leaf_index, cp.size, path, cp.root));
  check(`${what}: inclusion`, included, `in the tree of size ${cp.size}`);
  const tlog = parseTlogProof(leaf.tlog_proof ?? "");
  const same =
    !!tlog && !!path && tlog.index === BigInt(leaf.leaf_index) && tlog.checkpoint === note &&
    tlog.path.length === path.length && tlog.path.every((h, i) => equal(h, path[i]));
  check(`${what}: tlog-proof@v1`, same, same ? "" : "differs from the JSON proof or checkpoint");
  // Canonical (RFC 8785, integers only), as the log writes every leaf: no duplicate member,
  // no fraction, no stray whitespace or CRLF for two readers to read differently.
  const text = new TextDecoder("utf-8", { fatal: true });
  let doc: Json | null = null;
  let canonical = false;
  try {
    const source = text.decode(data);
    doc = JSON.parse(source);
    canonical = typeof doc === "object" && doc !== null && integersOnly(doc) && canonicalJson(doc) === source;
  } catch {
    doc = null;
  }
  check(`${what}: leaf is canonical JSON`, canonical, canonical ? "" : "not the RFC 8785 form of a JSON object with integer numbers only");
  return included && canonical ? doc : null;
}



/** A proven leaf's bytes (base64) as JSON, or null: for looking ahead in a chain, not for checking it. */
function leafJson(b64: string): unknown {
  try {
    return JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(fromBase64(b64) ?? new Uint8Array()));
  } catch {
    return null;
  }
}

/** What the verdict rests on, by who vouches for the checkpoint (as the Rust verifier says it). */
function guarantees(trusted: VerifyOptions["trusted"], policy: boolean): string {
  const held = ["the verifier alone: the bundle is what the log signed, complete as the log's subject map states it"];
  if (trusted?.allowOlder) held.push("a trusted checkpoint: the same log the regulator saw; older bundles allowed, so not that it is recent (a checkpoint holds no time)");
  else if (trusted) held.push("a trusted checkpoint: the same log the regulator saw, no older than it");
  held.push(policy
    ? "the policy's witnesses: one view of the log; if they audit (`witness serve --audit`), the map and every chain were replayed, so completeness holds against the operator"
    : "not audited here: completeness holds against the operator only if someone audits the log (a policy of auditing witnesses, or `monitor --audit-map`)");
  return `guarantees — ${held.join("; ")}`;
}
type CheckLeaf = (what: string, leaf: ProvenLeaf) => Promise<Json | null>;

/** The log's VRF key and the index of its parameters leaf; null for a log with none yet; undefined when that does not hold. */
type LogKey = { index: number; key: Uint8Array } | null | undefined;

/** What the map with `root` says of `key` (the index of its latest leaf, or null), from a bucket proof as bundles carry it. */
async function mapValue(root: Hash, key: Uint8Array, bucket: number, entriesText: string, pathText: string[]): Promise<{ ok: true; latest: number | null } | { ok: false; error: string }> {
  const entries = fromBase64(entriesText) ?? new Uint8Array(1);
  const path = hashes(pathText);
  let latest: number | null = null;
  let valid = key.length === 32 && bucket === key[0] * 256 + key[1] && entries.length % 40 === 0 && !!path && path.length === 16;
  for (let at = 0; valid && at < entries.length; at += 40) {
    const k = entries.slice(at, at + 32);
    if (at > 0 && toHex(entries.slice(at - 40, at - 8)) >= toHex(k)) valid = false;
    if (k[0] * 256 + k[1] !== bucket) valid = false;
    if (equal(k, key)) latest = Number(new DataView(entries.buffer, entries.byteOffset + at + 32, 8).getBigUint64(0));
  }
  valid = valid && (await verifyInclusion(await leafHash(entries), bucket, BUCKETS, path!, root));
  return valid ? { ok: true, latest } : { ok: false, error: "the bucket does not lead to the map root" };
}

/** The bundle's proof of the log's one parameters leaf, checked as the Rust verifier does. */
async function checkParameters(check: Check, checkLeaf: CheckLeaf, bundle: Bundle, root: Hash): Promise<LogKey> {
  const what = "log parameters";
  const p = bundle.parameters;
  if (!p) {
    check(what, false, "the bundle does not prove the log's VRF key (a bundle from an older version: ask the operator for a new one)");
    return undefined;
  }
  const value = await mapValue(root, await parametersKey(), p.bucket, p.bucket_entries, p.bucket_path);
  if (!value.ok) {
    check(`${what}: in the subject map`, false, value.error);
    return undefined;
  }
  if (value.latest === null && !p.leaf) {
    check(what, true, "the log has no VRF key at this checkpoint: its subjects have salted commitments");
    return null;
  }
  if (value.latest === null || !p.leaf || p.leaf.leaf_index !== value.latest) {
    check(`${what}: in the subject map`, false, `the map names leaf ${value.latest} as the log's parameters, the bundle gives ${p.leaf?.leaf_index ?? null}`);
    return undefined;
  }
  const doc = await checkLeaf(what, p.leaf);
  if (!doc) return undefined;
  const key = await parametersPublicKey(doc as Record<string, unknown>);
  if (typeof key === "string") {
    check(what, false, `leaf ${value.latest}: ${key}`);
    return undefined;
  }
  check(what, true, `leaf ${value.latest}: the log's one VRF key`);
  return { index: value.latest, key };
}

async function checkTrusted(check: Check, vkey: string, cp: Checkpoint, trusted: NonNullable<VerifyOptions["trusted"]>) {
  let old: Checkpoint;
  try {
    old = await verifyCheckpoint(trusted.checkpoint, vkey);
  } catch (e) {
    check("trusted checkpoint", false, String((e as Error).message ?? e));
    return;
  }
  const proof = hashes(trusted.consistency) ?? [];
  let ok: boolean;
  if (old.size > cp.size) {
    check("bundle is as recent as the trusted checkpoint", !!trusted.allowOlder, `the bundle's tree (${cp.size}) is older than the trusted one (${old.size})`);
    ok = await verifyConsistency(cp.size, old.size, cp.root, old.root, proof);
  } else if (old.size === cp.size) {
    ok = equal(old.root, cp.root);
  } else if (old.size === 0n) {
    ok = proof.length === 0 && equal(old.root, await sha256());
  } else {
    ok = await verifyConsistency(old.size, cp.size, old.root, cp.root, proof);
  }
  check("consistent with the trusted checkpoint", ok, `sizes ${old.size} and ${cp.size}`);
}

async function checkWitnessed(check: Check, notes: string[], bundle: Bundle, vkey: string, cp: Checkpoint, policyText: string) {
  let policy;
  try {
    policy = await parsePolicy(policyText);
  } catch (e) {
    check("policy", false, String((e as Error).message ?? e));
    return;
  }
  if (policy.logs.length > 0) {
    const ours = keyMaterial(vkey, 0x01);
    const listed = policy.logs.some((l) => keyMaterial(l, 0x01) === ours && l.split("+")[0] === vkey.split("+")[0]);
    check("the log is one the policy accepts", listed, vkey.split("+")[0]);
  }
  const witnessed = bundle.witnessed;
  if (!witnessed) {
    check(`witnessed checkpoint: quorum ${policy.quorum}`, (await checkQuorum(policy, bundle.checkpoint)).satisfied, "the bundle carries no checkpoint cosigned by witnesses");
    return;
  }
  let later: Checkpoint;
  try {
    later = await verifyCheckpoint(witnessed.checkpoint, vkey);
  } catch (e) {
    check("witnessed checkpoint: signed by the log", false, String((e as Error).message ?? e));
    return;
  }
  const quorum = await checkQuorum(policy, witnessed.checkpoint);
  check(`witnessed checkpoint: quorum ${policy.quorum}`, quorum.satisfied, `size ${later.size} cosigned by ${quorum.cosignedBy.join(", ") || "no witness of the policy"}`);
  const proof = hashes(witnessed.consistency);
  const consistent =
    later.size < cp.size ? false
      : later.size === cp.size ? equal(later.root, cp.root) && witnessed.consistency.length === 0
        : !!proof && (await verifyConsistency(cp.size, later.size, cp.root, later.root, proof));
  if (later.size > cp.size) {
    notes.push(`the witnesses' checkpoint (size ${later.size}) shows the bundle's tree (size ${cp.size}) was not a split view; events recorded after size ${cp.size} are not in the bundle`);
  }
  check("witnessed checkpoint: extends the bundle's checkpoint", consistent, `size ${cp.size} is a prefix of the witnessed size ${later.size}`);
}

/** Whether every number in a JSON value is a safe integer (the log's leaves hold no others). */
function integersOnly(value: unknown): boolean {
  if (typeof value === "number") return Number.isSafeInteger(value);
  if (Array.isArray(value)) return value.every(integersOnly);
  if (typeof value === "object" && value !== null) return Object.values(value).every(integersOnly);
  return true;
}

function decision(state: SubjectState, purpose: string): PurposeDecision {
  const s = effective(state, purpose);
  return s
    ? { purpose, may_send: s.status === "granted", status: s.status, event_id: s.eventId }
    : { purpose, may_send: false, status: NO_STATUS, event_id: null };
}

/** The decisions for `purposes` that consent leaves (in log order, with their indexes) give. */
export function decisionsFromLeaves(events: [number, ConsentLeaf][], purposes: string[]): PurposeDecision[] {
  const state = replay(events);
  return purposes.map((p) => decision(state, p));
}

/** The format name of a send decision with its proof (`GET /v1/consent?…&proof=true`). */
export const DECISION_FORMAT = "consent-ledger/decision/v1";

/**
 * Verifies a send decision with its proof (parsed JSON, or its text), as `consent-ledger verify
 * decision` does: its proof as an evidence bundle ({@link verifyEvidence}), and that the decision
 * is the one the bundle's events give for its purpose ("the decision follows from the proof").
 */
export async function verifyDecision(
  input: ProvenDecision | string,
  vkey: string,
  options: VerifyOptions = {},
): Promise<Report> {
  let doc: Json | null = null;
  try {
    doc = typeof input === "string" ? parseDocument(input) : (input as unknown as Json);
  } catch {
    doc = null;
  }
  const decision = doc?.decision as PurposeDecision | undefined;
  const wellFormed = doc?.format === DECISION_FORMAT && typeof decision === "object" && decision !== null &&
    typeof decision.purpose === "string" && decision.purpose !== ALL && typeof decision.may_send === "boolean" &&
    typeof decision.status === "string";
  if (!wellFormed) {
    return {
      items: [{ what: "decision", ok: false, detail: `not a ${DECISION_FORMAT} document with a decision` }],
      notes: [],
      passed: false,
    };
  }
  const proof = doc!.proof as Bundle;
  const report = await verifyEvidence(proof, vkey, options);
  const proven = Array.isArray(proof?.decisions) ? proof.decisions.find((d) => d.purpose === decision.purpose) : undefined;
  const same = !!proven && proven.may_send === decision.may_send && proven.status === decision.status &&
    (proven.event_id ?? null) === (decision.event_id ?? null);
  const size = typeof proof?.checkpoint === "string" ? proof.checkpoint.split("\n")[1] ?? "" : "";
  const detail = !proven
    ? `the proof has no decision for ${decision.purpose}`
    : same
      ? `${decision.purpose}: may_send ${decision.may_send} (${decision.status}), as of tree size ${size}`
      : `the proof gives may_send ${proven.may_send} (${proven.status}), the answer says ${decision.may_send} (${decision.status})`;
  report.items.push({ what: "the decision follows from the proof", ok: same, detail });
  report.passed = report.items.length > 0 && report.items.every((i) => i.ok);
  return report;
}

/** The format name of a campaign receipt's proof for one address. */
export const CAMPAIGN_PROOF_FORMAT = "consent-ledger/campaign-proof/v1";
export type CampaignProof = components["schemas"]["CampaignProof"];

const STATUS_CODES: (string | null)[] = [null, "pending", "granted", "withdrawn"];
const CAMPAIGN_MEMBERS = ["addresses", "id", "purpose", "recorded_at", "root", "tenant", "type", "v"];

/** A campaign entry's 41 bytes: key ‖ status (0 none … 3 withdrawn) ‖ uint64_be(deciding + 1). */
function decodeEntry(bytes: Uint8Array | null): { key: string; status: string | null; deciding: bigint | null } | null {
  if (!bytes || bytes.length !== 41 || bytes[32] >= STATUS_CODES.length) return null;
  const status = STATUS_CODES[bytes[32]];
  const raw = new DataView(bytes.buffer, bytes.byteOffset + 33, 8).getBigUint64(0);
  const deciding = raw === 0n ? null : raw - 1n;
  if ((status === null) !== (deciding === null)) return null;
  return { key: toHex(bytes.slice(0, 32)), status, deciding };
}

/**
 * Verifies a campaign receipt's proof for one address (parsed JSON, or its text), as
 * `consent-ledger verify campaign` does: the bundle ({@link verifyEvidence}), the campaign_check
 * leaf in the bundle's checkpoint, the address's entry in the leaf's root, the entry naming the
 * bundle's subject, and its decision being the one the address's events before the campaign leaf give.
 */
export async function verifyCampaign(
  input: CampaignProof | string,
  vkey: string,
  options: VerifyOptions = {},
): Promise<Report> {
  try {
    return await verifyCampaignUnchecked(input, vkey, options);
  } catch (e) {
    // A member of the wrong type somewhere: a verdict, never an exception.
    return {
      items: [{ what: "campaign proof", ok: false, detail: `not a ${CAMPAIGN_PROOF_FORMAT} document: ${(e as Error).message ?? e}` }],
      notes: [],
      passed: false,
    };
  }
}

const index = (v: unknown) => Number.isSafeInteger(v) && (v as number) >= 0;
const provenLeafShape = (v: unknown) => {
  const l = v as Json;
  return typeof l === "object" && l !== null && index(l.leaf_index) && typeof l.leaf === "string" &&
    typeof l.leaf_hash === "string" && Array.isArray(l.inclusion_proof) && l.inclusion_proof.every((h) => typeof h === "string") &&
    typeof l.tlog_proof === "string";
};

async function verifyCampaignUnchecked(input: CampaignProof | string, vkey: string, options: VerifyOptions): Promise<Report> {
  let doc: Json | null = null;
  try {
    doc = typeof input === "string" ? parseDocument(input) : (input as unknown as Json);
  } catch {
    doc = null;
  }
  const isObject = (v: unknown) => typeof v === "object" && v !== null && !Array.isArray(v);
  const entryDoc = doc?.entry as Json | undefined;
  if (doc?.format !== CAMPAIGN_PROOF_FORMAT || !provenLeafShape(doc.campaign) || !isObject(doc.proof) || !isObject(entryDoc) ||
    typeof entryDoc!.entry !== "string" || !Array.isArray(entryDoc!.path) || !entryDoc!.path.every((h) => typeof h === "string") ||
    !index(entryDoc!.index)) {
    return {
      items: [{ what: "campaign proof", ok: false, detail: `not a ${CAMPAIGN_PROOF_FORMAT} document` }],
      notes: [],
      passed: false,
    };
  }
  const proof = doc.proof as Bundle;
  const campaign = doc.campaign as ProvenLeaf;
  const report = await verifyEvidence(proof, vkey, options);
  const check: Check = (what, ok, detail = "") => {
    report.items.push({ what, ok, detail });
    return ok;
  };
  const done = () => {
    report.passed = report.items.length > 0 && report.items.every((i) => i.ok);
    return report;
  };
  let cp: Checkpoint;
  try {
    cp = await verifyCheckpoint(proof.checkpoint, vkey);
  } catch {
    return done();
  }
  const leaf = await provenLeaf(check, "campaign", campaign, cp, proof.checkpoint);
  if (!leaf) return done();
  const members = Object.keys(leaf).sort();
  const wellFormed = members.length === CAMPAIGN_MEMBERS.length && members.every((m, i) => m === CAMPAIGN_MEMBERS[i]) &&
    leaf.type === "campaign_check" && leaf.v === 1 && ["tenant", "id", "purpose", "root", "recorded_at"].every((m) => typeof leaf[m] === "string") &&
    leaf.purpose !== ALL &&
    Number.isInteger(leaf.addresses) && (leaf.addresses as number) >= 0;
  if (!check("campaign: leaf", wellFormed, wellFormed
    ? `${leaf.id} for ${leaf.purpose}, ${leaf.addresses} address(es), recorded ${leaf.recorded_at} (leaf ${campaign.leaf_index})`
    : "not a campaign_check leaf of version 1")) {
    return done();
  }
  check("campaign: tenant", leaf.tenant === proof.tenant.id, `the campaign's tenant is ${JSON.stringify(leaf.tenant)}`);
  // When the check was recorded: the operator's word, unless the witnesses bound it.
  const recorded = strictMillis(leaf.recorded_at);
  if (options.policy !== undefined && recorded !== null) {
    const timed = [{ what: `the campaign leaf (leaf ${campaign.leaf_index})`, index: campaign.leaf_index, occurred: recorded, recorded }];
    await checkTimeBounds(check, report.notes, "campaign: time", proof, vkey, cp, options.policy, timed);
  } else {
    report.notes.push("the campaign's recorded_at is the operator's word: with --policy the witnesses' cosignature times bound it");
  }
  const entryBytes = fromBase64(entryDoc!.entry as string);
  const entry = decodeEntry(entryBytes);
  const path = hashes(entryDoc!.path);
  const root = fromHex(leaf.root as string);
  const included = !!entry && !!path && root?.length === 32 &&
    (await verifyInclusion(await leafHash(entryBytes!), entryDoc!.index as number, BigInt(leaf.addresses as number), path, root));
  check("campaign: entry", included, entry ? `entry ${entryDoc!.index} of ${leaf.addresses} in the campaign's root` : "not a 41-byte entry");
  if (!entry || !included) return done();
  check("campaign: the entry names this address", entry.key === proof.subject.commitment, "its key is the bundle's subject key");
  const before: [number, ConsentLeaf][] = [];
  for (const e of proof.events) {
    if (e.leaf_index >= campaign.leaf_index) continue;
    const bytes = fromBase64(e.leaf);
    if (!bytes) continue;
    try {
      const parsed = parseConsentLeaf(JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes)));
      if (typeof parsed !== "string") before.push([e.leaf_index, parsed]);
    } catch {
      // not JSON: left out, as the Rust verifier does
    }
  }
  const replayed = effective(replay(before), leaf.purpose as string);
  const expected = { status: replayed?.status ?? null, deciding: replayed ? BigInt(replayed.leafIndex) : null };
  const same = expected.status === entry.status && expected.deciding === entry.deciding;
  const name = (e: { status: string | null; deciding: bigint | null }) =>
    `may_send ${e.status === "granted"} (${e.status ?? NO_STATUS}${e.deciding === null ? "" : `, leaf ${e.deciding}`})`;
  check("campaign: the decision follows from the events before it", same, same
    ? `${leaf.purpose}: ${name(entry)}`
    : `the events before leaf ${campaign.leaf_index} give ${name(expected)}, the campaign recorded ${name(entry)}`);
  return done();
}
