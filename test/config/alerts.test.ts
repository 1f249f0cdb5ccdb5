// The `alerts:` section: what it resolves to, and the mistakes it refuses (exit 78 with the place).
import { describe, expect, test } from "bun:test";
import { parseConfigText, resolveConfig } from "../../src/config/load.ts";
import { ConfigError } from "../../src/errors.ts";

const FILE = "/etc/cardano/jorm_master.yaml";

function problem(yaml: string): string {
  try {
    parseConfigText(yaml, FILE);
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return (e as Error).message;
  }
  throw new Error("expected a ConfigError");
}

describe("alerts config", () => {
  test("absent, null or without channels: off", () => {
    expect(resolveConfig({}, null).alerts).toBeNull();
    expect(resolveConfig({ alerts: null }, null).alerts).toBeNull();
    expect(resolveConfig({ alerts: { channels: [] } }, null).alerts).toBeNull();
  });

  test("channels with defaults; seconds to ms; a relative token_file is taken from the config's directory", () => {
    const { config } = parseConfigText(
      [
        "alerts:",
        "  rate_limit: 5",
        "  channels:",
        "    - { name: ops, type: webhook, preset: discord, url: 'https://discord.com/api/webhooks/1/x' }",
        "    - { name: hook, type: webhook, url: 'http://127.0.0.1:8080/a' }",
        "    - { name: tg, type: telegram, chat_id: -100123, token_file: tg.token }",
        "    - { name: tg2, type: telegram, chat_id: '@pool_alerts', token_env: TG_TOKEN, api_url: 'http://127.0.0.1:9/' }",
      ].join("\n"),
      FILE,
    );
    expect(config.alerts).toEqual({
      channels: [
        { name: "ops", type: "webhook", preset: "discord", url: "https://discord.com/api/webhooks/1/x" },
        { name: "hook", type: "webhook", preset: "json", url: "http://127.0.0.1:8080/a" },
        { name: "tg", type: "telegram", chatId: "-100123", apiUrl: "https://api.telegram.org", token: { file: "/etc/cardano/tg.token" } },
        { name: "tg2", type: "telegram", chatId: "@pool_alerts", apiUrl: "http://127.0.0.1:9", token: { env: "TG_TOKEN" } },
      ],
      dedupWindowMs: 600_000,
      rateLimit: 5,
      rateWindowMs: 600_000,
      retries: 3,
      timeoutMs: 5_000,
    });
  });

  test("a token written inline is refused: it must come from a file or the environment", () => {
    expect(problem("alerts:\n  channels:\n    - { name: tg, type: telegram, chat_id: 1, token: '123:abc' }\n")).toContain("token: unknown key");
  });

  test("a telegram channel needs exactly one token source", () => {
    expect(problem("alerts:\n  channels:\n    - { name: tg, type: telegram, chat_id: 1 }\n")).toContain("needs exactly one of token_file");
    expect(problem("alerts:\n  channels:\n    - { name: tg, type: telegram, chat_id: 1, token_file: a, token_env: B }\n")).toContain("needs exactly one of token_file");
  });

  test("bad URL, unknown preset, duplicate names, an ntfy URL without a topic", () => {
    expect(problem("alerts:\n  channels:\n    - { name: a, type: webhook, url: 'hooks.slack.com/x' }\n")).toContain("expected an http(s) URL");
    expect(problem("alerts:\n  channels:\n    - { name: a, type: webhook, preset: teams, url: 'https://x/y' }\n")).toContain("alerts.channels.0.preset");
    expect(problem("alerts:\n  channels:\n    - { name: a, type: webhook, url: 'https://x/y' }\n    - { name: a, type: webhook, url: 'https://x/z' }\n")).toContain('"a" names two channels');
    expect(problem("alerts:\n  channels:\n    - { name: n, type: webhook, preset: ntfy, url: 'https://ntfy.sh' }\n")).toContain("an ntfy channel's url is the topic's");
  });
});

describe("pooltool slot upload config", () => {
  test("off by default; on with send_slots", () => {
    expect(resolveConfig({ pooltool: { pool_id: "p", user_id: "u" } }, null).pooltool?.sendSlots).toBe(false);
    const c = resolveConfig({ pooltool: { pool_id: "p", user_id: "u", send_slots: true, endp_slots: "http://127.0.0.1:1/v0/sendlogs" } }, null);
    expect(c.pooltool).toMatchObject({ sendSlots: true, endpSlots: "http://127.0.0.1:1/v0/sendlogs" });
    expect(problem("pooltool:\n  pool_id: p\n  user_id: u\n  endp_slots: nope\n")).toContain("pooltool.endp_slots: expected an http(s) URL");
  });
});
