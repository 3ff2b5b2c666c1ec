// The verifier with no install: the script of the static page the ledger serves at `GET /verify`
// and `consent-ledger verify page` writes as one self-contained file (built by `npm run bundle`
// into browser/verify-page.js, committed, inlined into the page). An inspector drops an evidence
// bundle (or a decision or campaign proof) and, optionally, a trusted checkpoint with its
// consistency proof and a tlog-policy; this page runs the TypeScript verifier — the same checks
// as `consent-ledger verify evidence` — and shows the verdict, the timeline (times in JST), the
// decision (only for a bundle that verified) and the screens (HTML sandboxed with scripts off,
// images as images). Nothing leaves the page: no network.

import { articleItem, outcome, parseConsentLeaf } from "./consent.js";
import type { Basis, ConsentLeaf, SubjectState } from "./consent.js";
import {
  verifyCampaign, verifyDecision, verifyEvidence, CAMPAIGN_PROOF_FORMAT, DECISION_FORMAT,
} from "./verify.js";
import type { Bundle, Report, VerifyOptions } from "./verify.js";

type Lang = "ja" | "en";

const WORDS = {
  ja: {
    valid: "検証の結果：有効です。すべての確認項目を満たしています。",
    invalid: "検証の結果：無効です。このバンドルは証拠として信頼できません。",
    unverified: "以下はバンドルに書かれていた内容にすぎず、検証されていません。送信可否の判定は表示しません。",
    failed: "確認できない項目",
    ownKey: "検証鍵が入力されていないため、バンドル自身が名乗る鍵で検証しました。運営者が公表している鍵と照合してください。",
    timeline: "記録の経過", decision: "送信してよいか", screens: "同意を取得した画面・文面", appendix: "付録：技術的な確認項目",
    no: "No.", recorded: "記録日時（日本時間）", what: "内容", purposes: "目的", basis: "法的根拠", method: "方法", effect: "効力",
    purpose: "目的", judgement: "判定", may: "送信できます", mayNot: "送信できません", all: "すべての目的",
    effective: "効力あり", noEffect: "効力なし（先の配信停止が優先）", partlyNoEffect: "一部効力なし（先の配信停止が優先）", noChange: "変更なし", pending: "確認待ち", inUse: "使用期間",
    selfKey: "未検証：公表された検証鍵で確認していません。", keyUsed: "使用した検証鍵", operatorWord: "送信者名と目的の名前は運営者の申告で、検証の対象外です（括弧内は記録された目的のキー）。", notes: "注意事項",
    kinds: {
      opt_in: "同意を受けた", pending_opt_in: "同意の申込み（確認メールを送信）", confirm: "確認メールにより同意を確認",
      opt_out: "配信停止（送信拒否の通知）", erasure: "個人データの消去（配信停止の効力は残ります）", relabel: "識別子の移行",
      address_notified: "書面によるアドレスの通知を受けた（名刺など）", business_relationship: "取引関係にある相手として登録",
      address_published: "公表されているアドレスとして登録",
    } as Record<string, string>,
    article: (item: number | null) => item === null ? "特定電子メール法 第3条第3項" : `特定電子メール法 第3条第1項第${item}号`,
    methods: { web_form: "ウェブフォーム", email: "電子メール", paper: "書面", phone: "電話", in_person: "対面", import: "他システムからの移行", one_click: "ワンクリック配信停止" } as Record<string, string>,
    statuses: { granted: "同意あり", pending: "確認待ち", withdrawn: "配信停止", none: "記録なし" } as Record<string, string>,
  },
  en: {
    valid: "VALID: every check holds.",
    invalid: "INVALID: this bundle cannot be relied on as evidence.",
    unverified: "What follows is only what the bundle states; it is not verified. No send decision is shown.",
    failed: "failed checks",
    ownKey: "No verifier key was given: the bundle was checked against the key it names itself. Compare it with the key the operator publishes.",
    timeline: "The records, in order", decision: "May mail be sent?", screens: "The screens consent was given on", appendix: "Appendix: the technical checks",
    no: "No.", recorded: "Recorded (UTC)", what: "What happened", purposes: "Purposes", basis: "Legal basis", method: "How", effect: "Effect",
    purpose: "Purpose", judgement: "Decision", may: "may send", mayNot: "may not send", all: "all purposes",
    effective: "in effect", noEffect: "no effect (an earlier refusal binds)", partlyNoEffect: "partly no effect (an earlier refusal binds)", noChange: "no change", pending: "awaiting confirmation", inUse: "In use",
    selfKey: "NOT VERIFIED against a published key.", keyUsed: "Verifier key used", operatorWord: "The sender's name and the purposes' names are the operator's word, not verified (in brackets: the purpose keys the log records).", notes: "Notes",
    kinds: {
      opt_in: "Consent given", pending_opt_in: "Consent requested (confirmation mail sent)", confirm: "Consent confirmed",
      opt_out: "Unsubscribed (refusal)", erasure: "Personal data erased (any refusal still binds)", relabel: "Identifier migrated",
      address_notified: "Address notified in writing (e.g. a business card)", business_relationship: "Recorded as a business relationship",
      address_published: "Recorded as a published address",
    } as Record<string, string>,
    article: (item: number | null) => item === null ? "Act on Specified Electronic Mail, Art. 3(3)" : `Act on Specified Electronic Mail, Art. 3(1)(${["", "i", "ii", "iii", "iv"][item]})`,
    methods: { web_form: "web form", email: "e-mail", paper: "paper", phone: "telephone", in_person: "in person", import: "imported", one_click: "one-click unsubscribe" } as Record<string, string>,
    statuses: { granted: "consent in force", pending: "awaiting confirmation", withdrawn: "unsubscribed", none: "no record" } as Record<string, string>,
  },
};

/** A time as the reader reads it: JST for Japanese, UTC for English (the exact instant in its title). */
export function readableTime(rfc3339: string, lang: Lang): string {
  const ms = Date.parse(rfc3339);
  if (Number.isNaN(ms)) return rfc3339;
  const at = new Date(ms + (lang === "ja" ? 9 * 3600_000 : 0));
  const two = (n: number) => String(n).padStart(2, "0");
  const clock = `${two(at.getUTCHours())}:${two(at.getUTCMinutes())}:${two(at.getUTCSeconds())}`;
  return lang === "ja"
    ? `${at.getUTCFullYear()}年${at.getUTCMonth() + 1}月${at.getUTCDate()}日 ${clock}`
    : `${at.getUTCFullYear()}-${two(at.getUTCMonth() + 1)}-${two(at.getUTCDate())} ${clock} UTC`;
}

function el(tag: string, attrs: Record<string, string> = {}, ...children: (Node | string)[]): HTMLElement {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  for (const c of children) node.append(c);
  return node;
}

function decode(b64: string): Uint8Array {
  return Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
}

function leafDoc(b64: string): Record<string, unknown> {
  try {
    return JSON.parse(new TextDecoder().decode(decode(b64)));
  } catch {
    return {};
  }
}

/** Verifies a document of any of the three formats (its text), as `verify evidence` does. */
export async function verifyText(text: string, vkey: string, options: VerifyOptions = {}): Promise<{ report: Report; bundle: Bundle | null }> {
  let doc: Record<string, unknown> | null = null;
  try {
    doc = JSON.parse(text);
  } catch {
    doc = null;
  }
  const format = doc?.format;
  const report = format === DECISION_FORMAT ? await verifyDecision(text, vkey, options)
    : format === CAMPAIGN_PROOF_FORMAT ? await verifyCampaign(text, vkey, options)
    : await verifyEvidence(text, vkey, options);
  const bundle = (format === DECISION_FORMAT || format === CAMPAIGN_PROOF_FORMAT ? doc?.proof : doc) as Bundle | null;
  return { report, bundle: bundle && typeof bundle === "object" && Array.isArray(bundle.events) ? bundle : null };
}

/** A purpose as printed: its label (the operator's word) with its key (what the log records). */
function purposeLabel(bundle: Bundle, key: string, lang: Lang): string {
  const p = (bundle.tenant.purposes ?? []).find((x) => x.purpose === key);
  const label = (lang === "en" ? p?.label_en : p?.label_ja) ?? key;
  return label === key ? key : `${label} (${key})`;
}

function timeline(bundle: Bundle, lang: Lang): HTMLElement {
  const w = WORDS[lang];
  const table = el("table", { id: "timeline" }, el("tr", {}, ...[w.no, w.recorded, w.what, w.purposes, w.basis, w.method, w.effect].map((h) => el("th", {}, h))));
  const state: SubjectState = new Map();
  bundle.events.forEach((event, n) => {
    const doc = leafDoc(event.leaf);
    const parsed = parseConsentLeaf(doc);
    let what = w.kinds[String(doc.type)] ?? String(doc.type);
    let purposes = "", basis = "", method = "", effect = "";
    if (typeof parsed !== "string") {
      const leaf: ConsentLeaf = parsed;
      const kind = leaf.event === "opt_in" && leaf.confirmation_required ? "pending_opt_in" : leaf.event;
      what = leaf.event === "opt_in" && leaf.basis && leaf.basis !== "consent" ? w.kinds[leaf.basis] : w.kinds[kind];
      purposes = leaf.purposes === "all" ? w.all : leaf.purposes.map((p) => purposeLabel(bundle, p, lang)).join(lang === "ja" ? "、" : ", ");
      basis = leaf.event === "opt_out" ? w.article(null) : w.article(articleItem((leaf.basis ?? "consent") as Basis));
      method = w.methods[leaf.method] ?? leaf.method;
      const [did, changes] = outcome(state, event.leaf_index, leaf);
      effect = did.kind === "bound" ? (did.all ? w.noEffect : `${w.partlyNoEffect}: ${did.purposes.map((p) => purposeLabel(bundle, p, lang)).join(", ")}`)
        : did.kind === "pending" ? w.pending : did.kind === "no_change" ? w.noChange : w.effective;
      for (const [p, s] of changes) state.set(p, s);
    }
    const recorded = String(doc.recorded_at ?? "");
    table.append(el("tr", {}, el("td", {}, String(n + 1)),
      el("td", {}, el("time", { datetime: recorded, title: `UTC ${recorded}` }, readableTime(recorded, lang))),
      el("td", {}, what), el("td", {}, purposes), el("td", {}, basis), el("td", {}, method),
      el("td", effect.startsWith(w.noEffect) || effect.startsWith(w.partlyNoEffect) ? { class: "noeffect" } : {}, effect)));
  });
  return table;
}

const IMAGES = ["image/png", "image/jpeg", "image/gif", "image/webp", "image/svg+xml"];

function screens(bundle: Bundle, lang: Lang): HTMLElement {
  const section = el("section", { id: "screens" }, el("h2", {}, WORDS[lang].screens));
  for (const template of bundle.collection_points ?? []) {
    const doc = leafDoc(template.proof.leaf);
    const media = template.content_type.split(";")[0].trim().toLowerCase();
    const retired = template.retired ? String(leafDoc(template.retired.leaf).retired_at ?? "") : "";
    section.append(el("h3", {}, String(doc.name ?? template.id)),
      el("p", { class: "small" }, `${WORDS[lang].inUse}: ${readableTime(String(doc.registered_at ?? ""), lang)} – ${retired ? readableTime(retired, lang) : "…"}`));
    if (media === "text/html") {
      // The screen as the person saw it: a sandboxed frame, scripts off.
      const frame = el("iframe", { sandbox: "", class: "screen", title: String(doc.name ?? "") }) as HTMLIFrameElement;
      frame.srcdoc = new TextDecoder().decode(decode(template.content));
      section.append(frame);
    } else if (media.startsWith("text/")) {
      section.append(el("pre", {}, new TextDecoder().decode(decode(template.content))));
    } else if (IMAGES.includes(media)) {
      section.append(el("img", { class: "screen", src: `data:${media};base64,${template.content}`, alt: String(doc.name ?? "") }));
    } else if (media === "application/pdf") {
      section.append(el("object", { class: "screen", type: "application/pdf", data: `data:application/pdf;base64,${template.content}` }, "PDF"));
    } else {
      section.append(el("p", {}, `${template.content_type}, ${decode(template.content).length} bytes`));
    }
  }
  return section;
}

/** Renders a verification into `out`. */
export function render(out: HTMLElement, report: Report, bundle: Bundle | null, lang: Lang, ownKey: boolean, vkey: string): void {
  const w = WORDS[lang];
  out.replaceChildren();
  const failed = report.items.filter((i) => !i.ok);
  // Checked against the key the bundle names itself, a bundle anyone made passes: no verdict.
  const verdict = !report.passed ? `${w.invalid} (${w.failed}: ${failed.length})` : ownKey ? w.selfKey : w.valid;
  out.append(el("p", { id: "verdict", class: report.passed && !ownKey ? "verdict valid" : "verdict invalid" }, verdict));
  if (ownKey) out.append(el("p", { class: "warn" }, w.ownKey));
  out.append(el("p", { class: "small" }, `${w.keyUsed}: `, el("code", {}, vkey)));
  if (!report.passed) {
    out.append(el("ul", { class: "failed" }, ...failed.map((i) => el("li", {}, `✗ ${i.what}${i.detail ? ` — ${i.detail}` : ""}`))));
    if (bundle) out.append(el("p", {}, w.unverified));
  }
  if (bundle) {
    out.append(el("p", {}, `${bundle.tenant.legal_name} · ${bundle.subject.email}`), el("p", { class: "small" }, w.operatorWord));
    if (report.notes.length > 0) out.append(el("h2", {}, w.notes), el("ul", { id: "notes" }, ...report.notes.map((n) => el("li", { class: "small" }, n))));
    if (report.passed && !ownKey) {
      const table = el("table", { id: "decisions" }, el("tr", {}, el("th", {}, w.purpose), el("th", {}, w.judgement)));
      for (const d of bundle.decisions) {
        table.append(el("tr", {}, el("td", {}, purposeLabel(bundle, d.purpose, lang)),
          el("td", {}, el("strong", {}, d.may_send ? w.may : w.mayNot), ` (${w.statuses[d.status] ?? d.status})`)));
      }
      out.append(el("h2", {}, w.decision), table);
    }
    out.append(el("h2", {}, w.timeline), timeline(bundle, lang), screens(bundle, lang));
  }
  const details = el("details", {}, el("summary", {}, w.appendix),
    el("ul", { id: "items" }, ...report.items.map((i) => el("li", { class: i.ok ? "ok" : "fail" }, `${i.ok ? "✓" : "✗"} ${i.what}${i.detail ? ` — ${i.detail}` : ""}`))));
  out.append(details);
}

async function fileText(input: HTMLInputElement): Promise<string | undefined> {
  return input.files?.[0]?.text();
}

/** Consistency proof from the API's JSON (`{"path": […]}`) or base64 lines. */
function proofLines(text: string): string[] {
  try {
    const json = JSON.parse(text);
    if (Array.isArray(json?.path)) return json.path;
  } catch { /* lines */ }
  return text.split("\n").map((l) => l.trim()).filter(Boolean);
}

/** Wires the page: the form's inputs, the drop zone, the result. */
function start(): void {
  const $ = (id: string) => document.getElementById(id) as HTMLInputElement;
  const lang = (): Lang => ($("lang")?.value === "en" ? "en" : "ja");
  let bundleText: string | undefined;
  // Runs finish out of order (a wrong key fails fast, a full check takes longer): only the
  // latest one's result is shown.
  let latest = 0;
  const run = async () => {
    if (bundleText === undefined) return;
    const mine = ++latest;
    const given = $("vkey").value.trim();
    let vkey = given;
    if (!vkey) {
      try {
        const doc = JSON.parse(bundleText);
        vkey = String((doc.proof ?? doc)?.log?.verifier_key ?? "");
      } catch { /* the verifier says it is not a bundle */ }
    }
    const options: VerifyOptions = {};
    const checkpoint = await fileText($("checkpoint"));
    if (checkpoint) options.trusted = { checkpoint, consistency: proofLines((await fileText($("consistency"))) ?? ""), allowOlder: $("older").checked };
    const policy = await fileText($("policy"));
    if (policy) options.policy = policy;
    const { report, bundle } = await verifyText(bundleText, vkey, options);
    if (mine !== latest) return;
    render(document.getElementById("result")!, report, bundle, lang(), !given, vkey);
  };
  const take = async (file: File | undefined) => {
    if (!file) return;
    bundleText = await file.text();
    await run();
  };
  $("bundle").addEventListener("change", () => take($("bundle").files?.[0]));
  for (const id of ["vkey", "checkpoint", "consistency", "policy", "older", "lang"]) $(id).addEventListener("change", run);
  const drop = document.getElementById("drop")!;
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    take(e.dataTransfer?.files?.[0]);
  });
}

// For tests and scripts: the verifier the page uses.
(globalThis as Record<string, unknown>).consentLedger = { verifyText, readableTime };
if (typeof document !== "undefined" && document.getElementById("bundle")) start();
