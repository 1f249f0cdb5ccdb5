// Hosts and URLs from the config file, judged at load time. The daemon builds a REST URL per runner
// on every tick and a listen address for /metrics; a value that passed `config check` but fails
// `new URL()` there ("Invalid URL" on every tick) would leave the daemon blind while its unit looks
// fine. So every such value is parsed here, strictly, and the problem named before anything runs.

import { isIPv6 } from "node:net";

export type HostKind = "ipv4" | "ipv6" | "name";

export type HostCheck = { ok: true; host: string; kind: HostKind } | { ok: false; problem: string };

// Dotted decimal, no leading zeros: WHATWG URLs read "010.0.0.1" as octal (8.0.0.1) while Rust's
// SocketAddr (the node's --rest-listen) refuses it, so the two sides would disagree.
const IPV4_OCTET = "(25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)";
const IPV4_PATTERN = new RegExp(`^${IPV4_OCTET}(\\.${IPV4_OCTET}){3}$`);
/** RFC 1123 label: letters, digits, inner hyphens, 1..63 characters */
const LABEL_PATTERN = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/i;
const MAX_HOST_NAME_CHARS = 253;
/** A last label URL parsers read as a number, so the host would be taken for an (invalid) IPv4 address */
const NUMERIC_LABEL = /^(\d+|0x[0-9a-f]*)$/i;
const UNSPECIFIED = new Set(["0.0.0.0", "::", "0:0:0:0:0:0:0:0"]);

export const isIpv4 = (text: string): boolean => IPV4_PATTERN.test(text);

/**
 * A host as written in the config: an IPv4 literal, an IPv6 literal bare (`::1`) or in brackets
 * (`[::1]`), or (when `names` is true) a DNS host name. The result is bare; `urlHost` brackets IPv6.
 */
export function checkHost(text: string, options: { names: boolean }): HostCheck {
  const fail = (problem: string): HostCheck => ({ ok: false, problem });
  const expected = options.names ? "an IP address or a host name" : "an IP address (e.g. 127.0.0.1 or ::1)";
  if (text === "") return fail(`must not be empty; expected ${expected}`);
  if (text.trim() !== text) return fail(`has leading or trailing spaces; expected ${expected}`);
  if (/\s/.test(text)) return fail(`contains spaces; expected ${expected}`);
  if (/[\u0000-\u001f\u007f]/.test(text)) return fail(`contains control characters; expected ${expected}`);
  if (text.includes("://")) return fail(`is a URL; expected only the host${urlHostHint(text)}`);
  if (text.includes("/")) return fail(`contains "/"; expected ${expected}, nothing else`);

  const bracketed = /^\[(.*)\]$/.exec(text);
  const inner = bracketed ? bracketed[1]! : text;
  if (bracketed || inner.includes(":")) {
    // One colon after something that is not IPv6: "localhost:3100", "127.0.0.1:3100"
    if (!bracketed && /^[^:]+:\d*$/.test(inner)) return fail(`contains a port; expected ${expected} without one (ports are set by their own keys)`);
    if (inner.includes("%")) return fail("is an IPv6 address with a zone (%...), which URLs cannot carry; use a global or loopback address");
    if (!isIPv6(inner)) return fail(`is not a valid IPv6 address; expected ${expected}`);
    return { ok: true, host: inner.toLowerCase(), kind: "ipv6" };
  }
  if (isIpv4(text)) return { ok: true, host: text, kind: "ipv4" };
  const labels = text.split(".");
  if (NUMERIC_LABEL.test(labels[labels.length - 1]!)) {
    return fail(`is not a valid IPv4 address (four numbers 0..255 without leading zeros, e.g. 127.0.0.1)`);
  }
  if (!options.names) {
    return fail(`must be ${expected}, not a host name: it is also the runners' --rest-listen address, which takes no names`);
  }
  if (text.length > MAX_HOST_NAME_CHARS || !labels.every((label) => LABEL_PATTERN.test(label))) {
    return fail(`is not a valid host name (letters, digits and "-" in dot-separated parts); expected ${expected}`);
  }
  return { ok: true, host: text.toLowerCase(), kind: "name" };
}

export const isUnspecified = (host: string): boolean => UNSPECIFIED.has(host);

/** The host as it goes into a URL or a listen address: IPv6 in brackets. */
export const urlHost = (host: string, kind: HostKind): string => (kind === "ipv6" ? `[${host}]` : host);

/**
 * An http(s) URL the daemon will fetch: parses, is http or https, has a valid host and (unless
 * `secret`) no credentials. Returns the problem, or null; with `secret` the message never quotes it.
 */
export function httpUrlProblem(text: string, options: { secret?: boolean } = {}): string | null {
  // A webhook URL's path is its secret: then the message never quotes the URL
  const found = options.secret ? "" : `, found ${JSON.stringify(text)}`;
  if (text.trim() !== text || /\s/.test(text)) return `contains spaces; expected an http(s) URL${found}`;
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return `expected an http(s) URL like "https://api.pooltool.io/v0/sharemytip"${found}`;
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") return `expected an http(s) URL, found the scheme ${JSON.stringify(url.protocol)}`;
  // Credentials in a URL are printed wherever the URL is; only a secret URL (a webhook) may carry them
  if (!options.secret && (url.username !== "" || url.password !== "")) return "must not carry a user name or password";
  const host = checkHost(url.hostname, { names: true });
  if (!host.ok) return `host ${JSON.stringify(url.hostname)} ${host.problem}`;
  return null;
}

/** `, e.g. "127.0.0.1"` with the host of a URL written where a host belongs, or nothing */
function urlHostHint(text: string): string {
  try {
    const host = new URL(text).hostname.replace(/^\[(.*)\]$/, "$1");
    return host === "" ? "" : `, e.g. ${JSON.stringify(host)}`;
  } catch {
    return "";
  }
}
