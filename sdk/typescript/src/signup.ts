// bindSignupForm: a signup form records a *pending* opt-in (the person confirms by the link the
// sender mails: the ledger mails no one) with the tenant's publishable key — the address, the purposes ticked, whether
// the box was pre-checked, and the exact consent text shown. When the ledger cannot be reached the
// form is never held up: the signup is queued in localStorage under its idempotency key and sent
// again later (on the next page load, when the browser comes online, every half minute), so it is
// recorded exactly once. The page is told through DOM events on the form.

import type { components } from "./openapi.js";
import { idempotencyKey } from "./client.js";

export type Signup = components["schemas"]["Signup"];
export type SignupRecorded = components["schemas"]["SignupRecorded"];

/** Options of bindSignupForm. */
export interface SignupFormOptions {
  /** The service's base URL, e.g. https://ledger.example.jp */
  baseUrl: string;
  /** The tenant's publishable key (pk_…), allowed for this page's origin. */
  publishableKey: string;
  /** The address field (default: the form's input[type=email]). */
  emailField?: string;
  /** The purpose checkboxes (default: input[name=purposes]); their values are purpose keys. */
  purposeFields?: string;
  /** The consent text shown (default: the text of the form's [data-consent-text] element). */
  consentText?: string | (() => string);
  /** ja or en (default: the page's lang, else ja). */
  language?: string;
  /** "continue" (default): let the form submit once recorded or queued. "prevent": a page that
   * handles the submission itself (a single-page app). */
  submit?: "continue" | "prevent";
  /** How long to wait for the ledger before queueing and going on (default 4000 ms). */
  timeoutMs?: number;
}

/** What bindSignupForm returns. */
export interface SignupBinding {
  /** Sends the queued signups now; resolves with how many are still queued. */
  flush(): Promise<number>;
  /** How many signups wait in the queue. */
  pending(): number;
  /** Stops listening to the form. */
  unbind(): void;
}

interface Queued {
  key: string;
  body: Signup;
  queuedAt: number;
}

/** The events dispatched on the form (detail in brackets). */
export const SIGNUP_EVENTS = {
  /** Recorded [SignupRecorded]. */
  recorded: "consent-ledger:recorded",
  /** The ledger is unreachable or busy: queued for later [{ error }]. */
  queued: "consent-ledger:queued",
  /** The ledger refused it (a wrong address, no purpose ticked…) [problem]: the form does not
   * submit, so the person can correct it. */
  rejected: "consent-ledger:rejected",
} as const;

/** Binds a signup form. */
export function bindSignupForm(form: HTMLFormElement, options: SignupFormOptions): SignupBinding {
  const base = options.baseUrl.replace(/\/+$/, "");
  const url = `${base}/v1/signups/${encodeURIComponent(options.publishableKey)}`;
  const storeKey = `consent-ledger:queue:${options.publishableKey}`;
  let storage: Storage | null = (() => {
    try {
      return globalThis.localStorage ?? null;
    } catch {
      return null;
    }
  })();
  let memory: Queued[] = [];
  const load = (): Queued[] => {
    if (!storage) return memory;
    try {
      return JSON.parse(storage.getItem(storeKey) ?? "[]");
    } catch {
      return [];
    }
  };
  const save = (queue: Queued[]) => {
    memory = queue;
    try {
      storage?.setItem(storeKey, JSON.stringify(queue));
    } catch {
      // Storage full or forbidden (private mode): the queue lives in memory for this page.
      storage = null;
    }
  };
  const emit = (name: string, detail: unknown) =>
    form.dispatchEvent(new CustomEvent(name, { detail, bubbles: true }));

  /** Sends one signup: "recorded", "retry" (keep it queued) or the problem that refused it. */
  const send = async (item: Queued, timeoutMs: number): Promise<["recorded", SignupRecorded] | ["retry", unknown] | ["rejected", unknown]> => {
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(), timeoutMs);
    try {
      const res = await fetch(url, {
        method: "POST",
        headers: { "content-type": "application/json", "idempotency-key": item.key },
        body: JSON.stringify(item.body),
        signal: abort.signal,
      });
      const body = await res.json().catch(() => ({}));
      if (res.ok) return ["recorded", body as SignupRecorded];
      // 409: the same signup (idempotency key) is still being recorded — ask again later.
      if (res.status === 409 || res.status === 429 || res.status >= 500) return ["retry", body];
      return ["rejected", body];
    } catch (error) {
      return ["retry", { detail: String(error) }];
    } finally {
      clearTimeout(timer);
    }
  };

  let flushing: Promise<number> | null = null;
  const flush = (): Promise<number> => {
    flushing ??= (async () => {
      for (const item of load()) {
        const [outcome, detail] = await send(item, options.timeoutMs ?? 4000);
        if (outcome === "retry") break;
        save(load().filter((q) => q.key !== item.key));
        emit(outcome === "recorded" ? SIGNUP_EVENTS.recorded : SIGNUP_EVENTS.rejected, detail);
      }
      return load().length;
    })().finally(() => {
      flushing = null;
    });
    return flushing;
  };

  const purposeBoxes = () => [
    ...form.querySelectorAll<HTMLInputElement>(options.purposeFields ?? "input[name=purposes]"),
  ];
  // Boxes ticked before the person did anything (by markup or by the page's script).
  const initiallyTicked = new Set(purposeBoxes().filter((b) => b.checked));

  const read = (): Signup => {
    const email = form.querySelector<HTMLInputElement>(options.emailField ?? "input[type=email]")?.value ?? "";
    const ticked = purposeBoxes().filter((b) => b.checked);
    const text =
      typeof options.consentText === "function"
        ? options.consentText()
        : options.consentText ?? form.querySelector("[data-consent-text]")?.textContent?.trim() ?? "";
    const lang = options.language ?? (document.documentElement.lang.startsWith("en") ? "en" : "ja");
    return {
      email: email.trim(),
      purposes: ticked.map((b) => b.value),
      consent_text: text,
      prechecked: ticked.some((b) => b.defaultChecked || initiallyTicked.has(b)),
      language: lang,
    };
  };

  let resubmitting = false;
  let inFlight = false;
  const onSubmit = async (event: SubmitEvent) => {
    if (resubmitting) return;
    event.preventDefault();
    // A second click while the first signup is on its way records nothing more.
    if (inFlight) return;
    inFlight = true;
    try {
      await handle(event);
    } finally {
      inFlight = false;
    }
  };
  const handle = async (event: SubmitEvent) => {
    const item: Queued = { key: idempotencyKey(), body: read(), queuedAt: Date.now() };
    const [outcome, detail] = await send(item, options.timeoutMs ?? 4000);
    if (outcome === "rejected") {
      emit(SIGNUP_EVENTS.rejected, detail);
      return;
    }
    if (outcome === "recorded") {
      emit(SIGNUP_EVENTS.recorded, detail);
    } else {
      save([...load(), item]);
      emit(SIGNUP_EVENTS.queued, { error: detail });
    }
    if ((options.submit ?? "continue") === "continue") {
      // requestSubmit from the prototype: works when a control is named "submit", keeps the
      // clicked button's name and value; our handler lets this one through.
      resubmitting = true;
      try {
        HTMLFormElement.prototype.requestSubmit.call(form, event.submitter ?? undefined);
      } finally {
        resubmitting = false;
      }
    }
  };

  form.addEventListener("submit", onSubmit);
  const onOnline = () => void flush();
  globalThis.addEventListener?.("online", onOnline);
  const timer = setInterval(() => void flush(), 30_000);
  if (load().length > 0) void flush();
  return {
    flush,
    pending: () => load().length,
    unbind() {
      form.removeEventListener("submit", onSubmit);
      globalThis.removeEventListener?.("online", onOnline);
      clearInterval(timer);
    },
  };
}
