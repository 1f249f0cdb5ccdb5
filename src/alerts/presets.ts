// The HTTP request each channel sends for one alert. Pure: (event, channel, host) → request. Bodies
// are plain text inside JSON: no parse modes or markdown that a reason string could break, except
// Slack's three escaped characters and Discord's mention guard.

import type { AlertChannelConfig } from "../config/types.ts";
import type { AlertEvent, Severity } from "./events.ts";

export interface AlertRequest {
  url: string;
  body: string;
  headers: Record<string, string>;
}

/** A channel ready to send: its config plus the secret it needs (the Telegram token), if any. */
export type Channel = AlertChannelConfig & { secret?: string };

const DISCORD_MAX_CHARS = 2000;
const TELEGRAM_MAX_CHARS = 4096;
const ICON: Record<Severity, string> = { critical: "🔴", warning: "🟠", info: "🟢" };
/** ntfy priorities: 5 urgent, 4 high, 3 default */
const NTFY_PRIORITY: Record<Severity, number> = { critical: 5, warning: 4, info: 3 };

const cap = (s: string, n: number) => (s.length <= n ? s : `${s.slice(0, n - 1)}…`);
const slackEscape = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");

/** The JSON preset's body: the event itself, for any receiver that parses JSON. */
export function jsonBody(e: AlertEvent, host: string) {
  return {
    source: "jorm-master",
    host,
    kind: e.kind,
    severity: e.severity,
    title: e.title,
    text: e.text,
    ...(e.runner === undefined ? {} : { runner: e.runner }),
    at: new Date(e.atMs).toISOString(),
  };
}

export function alertRequest(e: AlertEvent, ch: Channel, host: string): AlertRequest {
  const headers = { "content-type": "application/json" };
  const title = `${ICON[e.severity]} jorm-master@${host}: ${e.title}`;
  if (ch.type === "telegram") {
    return {
      url: `${ch.apiUrl}/bot${ch.secret ?? ""}/sendMessage`,
      headers,
      body: JSON.stringify({ chat_id: ch.chatId, text: cap(`${title}\n${e.text}`, TELEGRAM_MAX_CHARS), disable_web_page_preview: true }),
    };
  }
  switch (ch.preset) {
    case "slack":
      return { url: ch.url, headers, body: JSON.stringify({ text: `${ICON[e.severity]} *jorm-master@${slackEscape(host)}: ${slackEscape(e.title)}*\n${slackEscape(e.text)}` }) };
    case "discord":
      // allowed_mentions: a reason text must never ping @everyone
      return { url: ch.url, headers, body: JSON.stringify({ content: cap(`**${title}**\n${e.text}`, DISCORD_MAX_CHARS), allowed_mentions: { parse: [] } }) };
    case "ntfy": {
      // ntfy's JSON publishing goes to the server's root with the topic in the body; the config
      // names the topic's URL, as `curl -d hi https://ntfy.sh/topic` would.
      const u = new URL(ch.url);
      const topic = u.pathname.replace(/^\/+|\/+$/g, "");
      return {
        url: `${u.origin}/`,
        headers,
        body: JSON.stringify({ topic, title: `jorm-master@${host}: ${e.title}`, message: e.text, priority: NTFY_PRIORITY[e.severity], tags: [e.severity, e.kind] }),
      };
    }
    case "json":
      return { url: ch.url, headers, body: JSON.stringify(jsonBody(e, host)) };
  }
}

/** What may be said about a channel in a log line: its name and host, never a path or token
 *  (Slack and Discord webhook URLs carry their secret in the path). */
export function describeChannel(ch: Channel): string {
  const host = ch.type === "telegram" ? new URL(ch.apiUrl).host : new URL(ch.url).host;
  return `${ch.type === "telegram" ? "telegram" : ch.preset} channel "${ch.name}" (${host})`;
}

/** An error message with every secret in it masked. */
export function redact(message: string, ch: Channel): string {
  let m = message;
  const secrets = [ch.secret, ch.type === "webhook" ? ch.url : undefined, ch.type === "webhook" ? new URL(ch.url).pathname : undefined];
  for (const s of secrets) if (s && s.length > 1) m = m.split(s).join("***");
  return m;
}
