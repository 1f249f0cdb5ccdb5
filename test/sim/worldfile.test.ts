import { describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ConfigError, EXIT_CONFIG } from "../../src/errors.ts";
import { loadWorld, locateWorld, parseWorld, renderWorld, renderWrapper, selfCommand, WORLD_FILE } from "../../src/sim/worldfile.ts";

const INIT = {
  block0TimeMs: Date.UTC(2026, 0, 1, 0, 0, 0, 700),
  slotMs: 1000,
  slotsPerEpoch: 60,
  seed: 3,
  density: 5,
  activeSlotCoeff: 0.5,
  bootstrapMs: 2500,
  computeMs: 1000,
};

describe("world file", () => {
  test("a rendered world parses back into the same chain, block0 in whole seconds", () => {
    const w = parseWorld(renderWorld(INIT), "/w/sim-world.yaml");
    expect(w.chain).toEqual({
      block0TimeMs: Date.UTC(2026, 0, 1),
      slotDurationMs: 1000,
      slotsPerEpoch: 60,
      seed: 3,
      leaderSlotsPerEpoch: 5,
      activeSlotCoeff: 0.5,
    });
    expect(w.bootFor(0).Bootstrapping).toBe(2500);
    expect(w.scheduleComputeMsFor(0)).toBe(1000);
    expect(w.journalPath).toBe("/w/journal.jsonl");
  });

  test("per-runner overrides of boot and schedule computation", () => {
    const text = `${renderWorld(INIT).replace("runners: {}\n", "")}runners:\n  "1":\n    boot_ms: {bootstrapping: 60000}\n    schedule_compute_ms: 30000\n`;
    const w = parseWorld(text, "/w/sim-world.yaml");
    expect(w.bootFor(1).Bootstrapping).toBe(60_000);
    expect(w.bootFor(1).PreparingStorage).toBe(w.bootFor(0).PreparingStorage);
    expect(w.scheduleComputeMsFor(1)).toBe(30_000);
    expect(w.bootFor(0).Bootstrapping).toBe(2500);
  });

  test("precise config errors (exit 78): unknown key, bad slot length, YAML syntax", () => {
    const cases: [string, string][] = [
      [renderWorld(INIT).replace("seed: 3", "seed: 3\n  sed: 4"), "chain: Unrecognized key"],
      [renderWorld(INIT).replace("slot_ms: 1000", "slot_ms: 1500"), "slotDurationMs must be a positive whole number of seconds"],
      ["chain: [1\n", "YAML syntax error"],
    ];
    for (const [text, message] of cases) {
      let error: unknown;
      try {
        parseWorld(text, "/w/sim-world.yaml");
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(ConfigError);
      expect((error as ConfigError).exitCode).toBe(EXIT_CONFIG);
      expect((error as Error).message).toContain(message);
    }
  });

  test("located through $JORM_SIM_WORLD (directory or file), else beside --config; missing is a config error", () => {
    const dir = mkdtempSync(join(tmpdir(), "jm-world-"));
    try {
      expect(locateWorld("/etc/cardano/jorm_runner_0.yaml", {})).toBe(`/etc/cardano/${WORLD_FILE}`);
      expect(locateWorld("/etc/cardano/jorm_runner_0.yaml", { JORM_SIM_WORLD: dir })).toBe(join(dir, WORLD_FILE));
      expect(locateWorld(undefined, { JORM_SIM_WORLD: join(dir, "w.yaml") })).toBe(join(dir, "w.yaml"));
      expect(() => locateWorld(undefined, {})).toThrow(ConfigError);
      expect(() => loadWorld(join(dir, WORLD_FILE))).toThrow("sim world init");
      writeFileSync(join(dir, WORLD_FILE), renderWorld(INIT));
      expect(loadWorld(join(dir, WORLD_FILE)).dir).toBe(dir);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("drop-in wrapper", () => {
  test("execs this jorm-master's sim node with every argument; compiled binary or bun + script", () => {
    expect(selfCommand("/usr/local/bin/jorm-master", "/$bunfs/root/jorm-master")).toEqual(["/usr/local/bin/jorm-master"]);
    expect(selfCommand("/usr/bin/bun", "/opt/jm/src/cli.ts")).toEqual(["/usr/bin/bun", "/opt/jm/src/cli.ts"]);
    expect(renderWrapper(["/opt/it's/jorm-master"])).toBe(
      "#!/bin/sh\n# A simulated Jormungandr: jorm-master's node simulator with jormungandr's flags.\n" +
        "exec '/opt/it'\\''s/jorm-master' sim node \"$@\"\n",
    );
  });
});
