// E-mail addresses as the ledger keys them: a faithful port of the Rust SDK's `address` module
// (one rule for the server and both verifiers; both are checked on sdk/vectors/addresses.json).
// Trim; split at the last "@"; the domain to ASCII (UTS 46, by the platform's URL parser) and
// lower case; the local part in NFC and lower case; a dot-atom, except that on the Japanese
// mobile carriers' domains its dots may stand anywhere (`taro..hanako`, `taro.@`, `.taro`), kept
// exactly; a quoted local part holding such a dot-atom is the same address unquoted.

/** The carriers' mail domains (and their subdomains) where legacy local parts are accepted. */
export const LEGACY_DOMAINS = ["docomo.ne.jp", "ezweb.ne.jp", "au.com"];

const ATEXT_SPECIALS = "!#$%&'*+-/=?^_`{|}~";
const bytes = (s: string): number => new TextEncoder().encode(s).length;

/** Whether `domain` (ASCII, lower case) is a carrier's, where legacy local parts are accepted. */
export function isLegacyDomain(domain: string): boolean {
  return LEGACY_DOMAINS.some((d) => domain === d || domain.endsWith(`.${d}`));
}

/** Unicode's default-ignorable code points: shown as nothing, so never part of an address. */
function invisible(c: number): boolean {
  return c === 0xad || c === 0x34f || c === 0x61c || c === 0x115f || c === 0x1160 || c === 0x17b4 || c === 0x17b5
    || (c >= 0x180b && c <= 0x180f) || (c >= 0x200b && c <= 0x200f) || (c >= 0x202a && c <= 0x202e)
    || (c >= 0x2060 && c <= 0x206f) || c === 0x3164 || (c >= 0xfe00 && c <= 0xfe0f) || c === 0xfeff
    || c === 0xffa0 || (c >= 0xfff0 && c <= 0xfff8) || (c >= 0x1bca0 && c <= 0x1bca3)
    || (c >= 0x1d173 && c <= 0x1d17a) || (c >= 0xe0000 && c <= 0xe0fff);
}

function localChar(ch: string): boolean {
  const c = ch.codePointAt(0)!;
  const allowed = /[A-Za-z0-9.]/.test(ch) || ATEXT_SPECIALS.includes(ch) || c > 0x7f;
  return allowed && !invisible(c);
}

/** The domain in ASCII (UTS 46), or null: the URL parser's host processing, with the
 * characters a URL host would decode or take as syntax refused first. */
function domainToAscii(domain: string): string | null {
  if (domain === "" || /[%/\\?#@:<>^|\[\]]/.test(domain)) return null;
  try {
    return new URL(`http://${domain}`).hostname;
  } catch {
    return null;
  }
}

/** The normalised address, or the reason it is not one (as the Rust `AddressError` says it). */
export function normalizeAddress(input: string): { address: string } | { error: string } {
  // Unicode White_Space at both ends, as Rust's str::trim (JS trim differs: U+FEFF, U+0085).
  const text = input.replace(/^\p{White_Space}+|\p{White_Space}+$/gu, "");
  if (text === "") return { error: "it is empty" };
  if (/[\p{Cc}\p{White_Space}]/u.test(text)) return { error: "it contains spaces or control characters" };
  const at = text.lastIndexOf("@");
  if (at < 0) return { error: "there is no '@'" };
  let local = text.slice(0, at);
  const rawDomain = text.slice(at + 1);
  if (local.length >= 2 && local.startsWith('"') && local.endsWith('"')) {
    const inner = local.slice(1, -1);
    if (inner !== "" && !/["\\]/.test(inner)) local = inner;
  }
  if (local === "") return { error: "the part before '@' must be 1–64 bytes" };
  const notDotAtom = "the part before '@' is not a plain dot-atom (no quotes, no leading, trailing or double dots)";
  if (local.startsWith('"') || /^\.+$/.test(local)) return { error: notDotAtom };
  if (![...local].every(localChar)) return { error: "the part before '@' has a character addresses cannot have" };
  if (rawDomain.startsWith("[")) return { error: "IP-literal domains are not accepted" };
  const ascii = domainToAscii(rawDomain);
  if (ascii === null) return { error: "the domain is not a valid domain name" };
  const domain = ascii.toLowerCase();
  const dotted = local.startsWith(".") || local.endsWith(".") || local.includes("..");
  if (dotted && !isLegacyDomain(domain)) {
    return { error: `${notDotAtom.slice(0, -1)}; those are accepted only on the Japanese mobile carriers' domains)` };
  }
  const labels = domain.split(".");
  const labelOk = (l: string) => l !== "" && l.length <= 63 && !l.startsWith("-") && !l.endsWith("-") && /^[a-z0-9-]+$/.test(l);
  const name = "the domain must be a name like example.jp";
  if (domain.length > 253 || labels.length < 2 || !labels.every(labelOk)) return { error: name };
  if (/^([0-9]+|0[xX][0-9A-Fa-f]*)$/.test(labels[labels.length - 1])) return { error: name };
  // The limits hold for the normalised form (a decomposed spelling is longer).
  const normalised = local.normalize("NFC").toLowerCase();
  if (bytes(normalised) > 64) return { error: "the part before '@' must be 1–64 bytes" };
  const address = `${normalised}@${domain}`;
  if (bytes(address) > 254) return { error: "it is longer than 254 bytes" };
  return { address };
}

/** The address as a mail header writes it: a legacy local part as a quoted string. */
export function headerForm(address: string): string {
  const at = address.lastIndexOf("@");
  const local = address.slice(0, at);
  return local.startsWith(".") || local.endsWith(".") || local.includes("..") ? `"${local}"${address.slice(at)}` : address;
}
