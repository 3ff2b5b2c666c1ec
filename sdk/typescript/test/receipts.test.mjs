// The consent-record exports (sdk/vectors/receipts.json, written by the server's
// tests/it/receipts.rs) against the standards themselves, offline:
// - ISO/IEC TS 27560 records in DPV: expanded by a JSON-LD processor (jsonld, safe mode: a term
//   it cannot map is an error, never dropped), every property and every type is a term of the
//   DPV 2.3 vocabulary — an IRI under https://w3id.org/dpv#, not a plain string.
// - Kantara Consent Receipt v1.1: valid against the Kantara schema (draft-04).

import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

import jsonld from "jsonld";
import Ajv from "ajv-draft-04";

const vectors = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "vectors");
const read = (name) => readFileSync(join(vectors, name), "utf8");
const receipts = JSON.parse(read("receipts.json"));
const DPV = "https://w3id.org/dpv#";
const terms = new Set(read("standards/dpv-2.3-terms.txt").split("\n").filter(Boolean));

// No remote context may be fetched: the export carries its context inline.
const offline = async (url) => {
  throw new Error(`no remote documents: ${url}`);
};

async function expand(doc) {
  return jsonld.expand(doc, { safe: true, documentLoader: offline });
}

/** Every property and type IRI in an expanded document, and every IRI value in the DPV namespace. */
function iris(node, found = { properties: new Set(), types: new Set(), values: new Set() }) {
  if (Array.isArray(node)) {
    node.forEach((n) => iris(n, found));
  } else if (node && typeof node === "object") {
    for (const [key, value] of Object.entries(node)) {
      if (key === "@type") {
        // A typed literal's type (xsd:dateTime) is a datatype, not a class.
        if (!("@value" in node)) [value].flat().forEach((t) => found.types.add(t));
      } else if (key === "@id") {
        if (value.startsWith(DPV)) found.values.add(value);
      } else if (!key.startsWith("@")) {
        found.properties.add(key);
      }
      if (typeof value === "object") iris(value, found);
    }
  }
  return found;
}

test("the DPV records expand to DPV 2.3 terms only", async () => {
  const expanded = await expand(receipts.dpv);
  const { properties, types, values } = iris(expanded);
  assert.ok(properties.size > 15 && types.size > 8, `${properties.size} properties, ${types.size} types`);
  for (const iri of [...properties, ...types, ...values]) {
    assert.ok(iri.startsWith(DPV), `${iri} is not a DPV term`);
    assert.ok(terms.has(iri.slice(DPV.length)), `${iri} is not in DPV 2.3`);
  }
});

test("a DPV consent status is an IRI, never a plain string", async () => {
  const [graph] = [await expand(receipts.dpv)];
  const statuses = graph
    .flatMap((record) => record[`${DPV}hasConsentStatus`] ?? [])
    .map((status) => status["@type"]);
  assert.deepEqual(statuses.flat().slice(0, 2), [`${DPV}ConsentRequested`, `${DPV}ConsentGiven`]);
  const bases = graph.flatMap((record) => record[`${DPV}hasLegalBasis`] ?? []);
  assert.ok(bases.some((b) => b["@id"] === `${DPV}Consent`), "dpv:Consent as an IRI");
});

test("an undefined term is refused, not silently dropped", async () => {
  const wrong = structuredClone(receipts.dpv);
  wrong["@graph"][0]["hasTimestamp"] = "2026-01-01T00:00:00Z";
  await assert.rejects(expand(wrong));
});

test("the Kantara receipt is valid against the Kantara v1.1 schema", () => {
  const schema = JSON.parse(read("standards/kantara-consent-receipt-v1.1.schema.json"));
  const validate = new Ajv({ allErrors: true }).compile(schema);
  assert.ok(validate(receipts.kantara), JSON.stringify(validate.errors));
  const withoutPhone = structuredClone(receipts.kantara);
  delete withoutPhone.piiControllers[0].phone;
  assert.equal(validate(withoutPhone), false, "the schema requires the controller's phone");
});

test("the consent rules' port says what each event did, as the Rust outcomes the DPV records show", async () => {
  const { outcome, parseConsentLeaf } = await import("../dist/consent.js");
  const state = new Map();
  const kinds = receipts.bundle.events.map((e) => {
    const leaf = parseConsentLeaf(JSON.parse(Buffer.from(e.leaf, "base64").toString("utf8")));
    const [did, changes] = outcome(state, e.leaf_index, leaf);
    for (const [p, s] of changes) state.set(p, s);
    return did.kind === "bound" ? `bound${did.all ? "" : " partly"}` : did.kind;
  });
  // As tests/it/receipts.rs reads them from the DPV statuses of the same bundle.
  assert.deepEqual(kinds, ["pending", "effective", "effective", "effective", "bound", "effective"]);
});
