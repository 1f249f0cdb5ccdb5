// The `alerts:` section (issue 12), resolved apart from the rest so the rules stay in one place.
// Pure like resolve.ts: a Telegram token is only named here (a file or an environment variable);
// src/alerts reads it when the daemon starts, so neither `config print` nor a log line can show it.

import type { AlertChannelConfig, AlertsConfig } from "./types.ts";
import type { ParsedConfig } from "./schema.ts";
import type { Problem } from "./problems.ts";
import { httpUrlProblem } from "./address.ts";

const ms = (seconds: number) => Math.round(seconds * 1000);

export function resolveAlerts(a: ParsedConfig["alerts"], path: (file: string) => string): AlertsConfig | null {
  if (a == null || a.channels.length === 0) return null;
  const channels: AlertChannelConfig[] = a.channels.map((c) =>
    c.type === "webhook"
      ? { name: c.name, type: "webhook", preset: c.preset, url: c.url }
      : {
          name: c.name,
          type: "telegram",
          chatId: c.chat_id,
          apiUrl: c.api_url.replace(/\/+$/, ""),
          token: c.token_file !== undefined ? { file: path(c.token_file) } : { env: c.token_env! },
        },
  );
  return {
    channels,
    dedupWindowMs: ms(a.dedup_window),
    rateLimit: a.rate_limit,
    rateWindowMs: ms(a.rate_window),
    retries: a.retries,
    timeoutMs: ms(a.timeout),
  };
}

export function alertsProblems(a: ParsedConfig["alerts"]): Problem[] {
  if (a == null) return [];
  const problems: Problem[] = [];
  const seen = new Set<string>();
  a.channels.forEach((c, i) => {
    if (seen.has(c.name)) problems.push({ path: ["alerts", "channels", i, "name"], message: `${JSON.stringify(c.name)} names two channels; names must be unique (they label the metric)` });
    seen.add(c.name);
    if (c.type === "telegram" && (c.token_file === undefined) === (c.token_env === undefined)) {
      problems.push({
        path: ["alerts", "channels", i],
        message: "a telegram channel needs exactly one of token_file (a file holding the bot token) or token_env (an environment variable holding it); the token itself is never written in this file",
      });
    }
    // Parsed as the notifier will parse them (new URL), so a bad one fails here, not at the first alert
    const urlKey = c.type === "webhook" ? "url" : "api_url";
    const urlProblem = httpUrlProblem(c.type === "webhook" ? c.url : c.api_url, { secret: true });
    if (urlProblem !== null) problems.push({ path: ["alerts", "channels", i, urlKey], message: urlProblem });
    else if (c.type === "webhook" && c.preset === "ntfy" && !/^https?:\/\/[^/\s]+\/[^/\s?#]+\/?$/.test(c.url)) {
      problems.push({ path: ["alerts", "channels", i, "url"], message: `an ntfy channel's url is the topic's, e.g. "https://ntfy.sh/my-pool-alerts", found ${JSON.stringify(c.url)}` });
    }
  });
  return problems;
}
