import { describe, expect, test } from "bun:test";
import { record } from "../../src/history/events.ts";
import { historyJsonLines, localTime, parseKinds, parseSince, renderHistory } from "../../src/history/render.ts";

describe("history arguments", () => {
  test("--since: a duration before now or an ISO date/time; anything else is a usage error (64)", () => {
    const now = Date.UTC(2026, 10, 29, 20, 0, 0);
    expect(parseSince(undefined, now)).toBeNull();
    expect(parseSince("90s", now)).toBe(now - 90_000);
    expect(parseSince("15m", now)).toBe(now - 900_000);
    expect(parseSince("1h", now)).toBe(now - 3_600_000);
    expect(parseSince("2d", now)).toBe(now - 2 * 86_400_000);
    expect(parseSince("2026-11-29T19:00Z", now)).toBe(Date.UTC(2026, 10, 29, 19));
    expect(parseSince("2026-11-29", now)).toBe(Date.UTC(2026, 10, 29));
    for (const bad of ["yesterday", "1 hour", "-1h", "2026-13-45T99:99Z"]) {
      try {
        parseSince(bad, now);
        throw new Error(`accepted ${bad}`);
      } catch (e) {
        expect((e as { exitCode?: number }).exitCode).toBe(64);
      }
    }
  });

  test("--kind: comma-separated and repeatable; a prefix names its family; an unknown kind lists the kinds", () => {
    expect(parseKinds([])).toBeNull();
    expect(parseKinds(["failover,fence", "slot"])).toEqual(["failover", "fence", "fence_kill", "slot_produced", "slot_missed", "slot_rejected"]);
    expect(() => parseKinds(["failovers"])).toThrow('unknown kind "failovers"; kinds: daemon_start, daemon_stop, failover');
  });
});

describe("history output", () => {
  const records = [record(Date.UTC(2026, 10, 29, 20, 0, 5), { kind: "failover", runner: 2, title: "failover: #0 → #2 signs", text: "#0 died" }), record(Date.UTC(2026, 10, 29, 20, 1, 0), { kind: "daemon_stop", title: "daemon stopping", text: "daemon stopping" })];
  test("a table in local time with its offset; the reason after the title", () => {
    expect(renderHistory(records, -300)).toBe(
      ["TIME                        KIND         RUNNER  WHAT", "2026-11-29 15:00:05 -05:00  failover     #2      failover: #0 → #2 signs — #0 died", "2026-11-29 15:01:00 -05:00  daemon_stop  -       daemon stopping"].join("\n"),
    );
    expect(localTime(0, 90)).toBe("1970-01-01 01:30:00 +01:30");
  });
  test("--json: the file's own lines", () => {
    expect(historyJsonLines(records).split("\n").filter(Boolean).map((l) => JSON.parse(l))).toEqual(records);
  });
});
