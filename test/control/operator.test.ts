// The daemon's operator intent: requests applied between ticks, holds persisted, a switchover
// answered once a tick verified the new signer. Ticks are built with the real decide.
import { afterAll, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { askDaemon } from "../../src/control/client.ts";
import { startControl } from "../../src/control/index.ts";
import { daemonViewSchema, operatorResultSchema } from "../../src/control/protocol.ts";
import { HOLDS_FILE, Operator } from "../../src/control/operator.ts";
import { emptyMemory } from "../../src/master/decide.ts";
import type { OperatorIntent } from "../../src/master/intent.ts";
import type { TickReport } from "../../src/master/loop.ts";
import type { Memory, Observation } from "../../src/master/types.ts";
import { config, observation, pending, runner } from "../master/fixtures.ts";
import { tickWithIntent } from "../master/plan-helpers.ts";

const base = mkdtempSync(join(tmpdir(), "jm-op-"));
afterAll(() => rmSync(base, { recursive: true, force: true }));
let n = 0;
const quiet = { info() {}, warn() {}, error() {}, debug() {} };
const cfg = config();
const LOGS = [pending(0, 50), pending(0, 70)];
const tick = (obs: Observation, memory: Memory, intent: OperatorIntent): TickReport => tickWithIntent(cfg, obs, memory, intent);
const obsAt = (t: number, k0: "holder" | "standby", k2: "holder" | "standby", logs2 = LOGS) =>
  observation(t, [runner(0, { kind: k0, logs: LOGS }), runner(1, { kind: "standby", logs: [] }), runner(2, { kind: k2, logs: logs2 })]);

describe("Operator", () => {
  test("a hold is kept in holds.json and read back by the next daemon", () => {
    const dir = join(base, `s${n++}`);
    let now = 1_000;
    const op = new Operator({ cntRunners: () => 3, stateDir: dir, log: quiet, now: () => now });
    op.onTick(tick(obsAt(10_000, "holder", "standby"), emptyMemory(), op.intent));
    expect(op.apply({ cmd: "hold", id: 2, reason: "disk swap" })).toMatchObject({ ok: true });
    expect(JSON.parse(readFileSync(join(dir, HOLDS_FILE), "utf8"))).toEqual({ holds: { "2": { reason: "disk swap", sinceMs: 1_000 } } });
    expect(new Operator({ cntRunners: () => 3, stateDir: dir, log: quiet }).intent.holds[2]?.reason).toBe("disk swap");
    now = 2_000;
    expect(op.apply({ cmd: "release", id: 2 })).toMatchObject({ ok: true });
    expect(new Operator({ cntRunners: () => 3, stateDir: dir, log: quiet }).intent.holds).toEqual({});
  });

  test("hold and release go to the event log (history), with the reason", async () => {
    const { createHistory } = await import("../../src/history/index.ts");
    const { readHistory } = await import("../../src/history/log.ts");
    const dir = join(base, `h${n++}`);
    const history = createHistory(dir, quiet);
    const op = new Operator({ cntRunners: () => 3, stateDir: null, log: quiet, onEvent: (e) => history.operator(e) });
    op.onTick(tick(obsAt(10_000, "holder", "standby"), emptyMemory(), op.intent));
    op.apply({ cmd: "hold", id: 1, reason: "disk swap" });
    op.apply({ cmd: "release", id: 1 });
    await history.log.flush(2_000);
    const recs = readHistory(dir, {}).records.map((r) => [r.kind, r.runner, r.text]);
    expect(recs).toEqual([["hold", 1, "disk swap"], ["release", 1, "supervised again"]]);
  });

  test("an unknown runner, or a request before any tick, is refused", () => {
    const op = new Operator({ cntRunners: () => 3, stateDir: null, log: quiet });
    expect(op.apply({ cmd: "hold", id: 1, reason: "" })).toMatchObject({ ok: false });
    op.onTick(tick(obsAt(10_000, "holder", "standby"), emptyMemory(), op.intent));
    expect(op.apply({ cmd: "hold", id: 9, reason: "" })).toMatchObject({ ok: false, error: "no runner #9" });
  });

  test("a garbled holds.json holds nothing and says so", () => {
    const dir = join(base, `s${n++}`);
    require("node:fs").mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, HOLDS_FILE), "{nope");
    const errors: string[] = [];
    const op = new Operator({ cntRunners: () => 3, stateDir: dir, log: { ...quiet, error: (m: string) => errors.push(m) } });
    expect(op.intent.holds).toEqual({});
    expect(errors.join()).toContain(HOLDS_FILE);
  });

  test("switchover: check names the slots lost; without --force such a target is refused", () => {
    const op = new Operator({ cntRunners: () => 3, stateDir: null, log: quiet });
    op.onTick(tick(obsAt(10_000, "holder", "standby"), emptyMemory(), op.intent));
    const check = op.apply({ cmd: "switchover", target: 1, force: false, check: true });
    expect(check).toMatchObject({ ok: true, result: { target: 1, lostSlots: 2 } });
    expect(op.apply({ cmd: "switchover", target: 1, force: false, check: false })).toMatchObject({ ok: false });
    expect(op.intent.switchover).toBeNull();
    // The best standby is the one holding the slots.
    expect(op.apply({ cmd: "switchover", target: null, force: false, check: true })).toMatchObject({ ok: true, result: { target: 2, lostSlots: 0 } });
  });

  test("switchover is answered once a tick verified the new signer, with the gap it used", async () => {
    let intent: OperatorIntent = { holds: {}, switchover: null };
    const op = new Operator({ cntRunners: () => 3, stateDir: null, log: quiet, now: () => 10_100, onChange: (i) => (intent = i) });
    const r0 = tick(obsAt(10_000, "holder", "standby"), emptyMemory(), intent);
    op.onTick(r0);
    expect(op.apply({ cmd: "switchover", target: 2, force: false, check: false })).toMatchObject({ ok: true });
    const done = op.waitSwitchover();
    const r1 = tick(obsAt(10_100, "holder", "standby"), r0.memory, intent);
    expect(r1.plan.promote?.id).toBe(2);
    op.onTick(r1);
    const r2 = tick(obsAt(10_200, "standby", "holder"), r1.memory, intent);
    op.onTick(r2);
    const a = await done;
    expect(a).toMatchObject({ ok: true, result: { target: 2, gap: { afterSlot: null, beforeSlot: "0.50", atMs: 10_100 } } });
    expect(intent.switchover).toBeNull();
  });
});

describe("control socket: hold, status, switchover", () => {
  test("requests go through the inbox and status shows the hold", async () => {
    const path = join(base, `c${n++}.sock`);
    const op = new Operator({ cntRunners: () => 3, stateDir: null, log: quiet });
    const control = await startControl({ path, version: "t", log: quiet, operator: op });
    let memory = emptyMemory();
    const pump = async () => {
      const r = tick(obsAt(10_000, "holder", "standby"), memory, op.intent);
      memory = r.memory;
      op.onTick(r);
      await control.onTick(r);
    };
    await pump();
    const asked = askDaemon(path, { cmd: "hold", id: 1, reason: "kernel" }, operatorResultSchema);
    // Not applied until the loop drains the inbox after a tick.
    await Bun.sleep(50);
    expect(op.intent.holds[1]).toBeUndefined();
    await pump();
    expect(await asked).toMatchObject({ kind: "answer", result: { message: expect.stringContaining("#1 held") } });
    await pump();
    const st = await askDaemon(path, { cmd: "status" }, daemonViewSchema);
    expect(st.kind === "answer" && st.result.views.find((v) => v.id === 1)?.held?.reason).toBe("kernel");
    await control.close();
    expect(existsSync(path)).toBe(false);
  });
});
