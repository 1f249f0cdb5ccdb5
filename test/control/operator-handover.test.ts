// switchover --host in the daemon's Operator, with the real decide and a fake lease shell: checked
// on the signing host only, released at a safe gap, committed only after a tick observed after the
// fencing began proved every runner key-less, answered once the target holds the key.
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { askDaemon } from "../../src/control/client.ts";
import { startControl } from "../../src/control/index.ts";
import { daemonViewSchema, operatorResultSchema } from "../../src/control/protocol.ts";
import { phaseLine } from "../../src/ops/handover.ts";
import { HANDOVER_FENCE_TIMEOUT_MS, HANDOVER_RUNNER_WAIT_MS, Operator, signingRunnerIn, type HandoverPort } from "../../src/control/operator.ts";
import type { HostEntry, RegistryRound } from "../../src/master/registry.ts";
import type { ClusterObs } from "../../src/master/cluster.ts";
import { emptyMemory } from "../../src/master/decide.ts";
import type { OperatorIntent } from "../../src/master/intent.ts";
import type { TickReport } from "../../src/master/loop.ts";
import type { Memory, Observation } from "../../src/master/types.ts";
import { config, observation, pending, runner } from "../master/fixtures.ts";
import { tickWithIntent } from "../master/plan-helpers.ts";

const quiet = { info() {}, warn() {}, error() {} };
const cfg = config();
const LOGS = [pending(0, 50)];
const tick = (obs: Observation, memory: Memory, intent: OperatorIntent): TickReport => tickWithIntent(cfg, obs, memory, intent);

const signing: ClusterObs = { maySign: true, mustStopByMs: 1e15, takeoverSafeAtMs: null, holder: "host-a", grantedEpoch: 0 };
const fencing: ClusterObs = { ...signing, maySign: false, handingOverTo: "host-b" };
const obsAt = (t: number, k0: "holder" | "standby", cluster: ClusterObs) =>
  observation(t, [runner(0, { kind: k0, logs: LOGS }), runner(1, { kind: "standby", logs: LOGS })], { cluster });

function fakePort(over: Partial<HandoverPort> = {}) {
  const calls: string[] = [];
  let holder: string | null = "host-a";
  let commit: (r: { kind: string; error?: { message: string } }) => void = () => {};
  const port: HandoverPort = {
    candidate: "host-a",
    beginHandover: (to) => (calls.push(`begin ${to}`), null),
    abortHandover: (why) => void calls.push(`abort ${why}`),
    commitHandover: (at) => (calls.push(`commit ${at}`), new Promise((r) => (commit = r))),
    holder: () => holder,
    ...over,
  };
  return { port, calls, setHolder: (h: string | null) => (holder = h), commit: (r: { kind: string; error?: { message: string } }) => commit(r) };
}

function setup(over: Partial<HandoverPort> = {}) {
  let now = 10_000;
  let intent: OperatorIntent = { holds: {}, switchover: null };
  const f = fakePort(over);
  const op = new Operator({ cntRunners: () => 2, stateDir: null, log: quiet, now: () => now, handover: f.port, onChange: (i) => (intent = i) });
  let memory = emptyMemory();
  const step = (k0: "holder" | "standby", cluster: ClusterObs, dt = 500) => {
    now += dt;
    const r = tick(obsAt(now, k0, cluster), memory, intent);
    memory = r.memory;
    op.onTick(r);
    return r;
  };
  step("holder", signing);
  return { op, ...f, step, intent: () => intent, setNow: (t: number) => (now = t) };
}

describe("Operator: switchover --host", () => {
  test("refused without cluster mode, with a runner named, to this host; on a host that does not sign it names the host to run it on", () => {
    const plain = new Operator({ cntRunners: () => 2, stateDir: null, log: quiet });
    plain.onTick(tick(obsAt(10_000, "holder", signing), emptyMemory(), { holds: {}, switchover: null }));
    expect(plain.apply({ cmd: "switchover", target: null, force: false, check: true, host: "host-b" })).toMatchObject({ ok: false, error: expect.stringContaining("cluster mode") });
    const s = setup();
    expect(s.op.apply({ cmd: "switchover", target: 1, force: false, check: true, host: "host-b" })).toMatchObject({ ok: false });
    expect(s.op.apply({ cmd: "switchover", target: null, force: false, check: true, host: "host-a" })).toMatchObject({ ok: false, error: expect.stringContaining("is this host") });
    s.setHolder("host-c");
    expect(s.op.apply({ cmd: "switchover", target: null, force: false, check: false, host: "host-b" })).toMatchObject({ ok: false, error: expect.stringContaining('run "jorm-master switchover --host host-b" on host-c') });
    expect(s.op.intent.switchover).toBeNull();
  });

  test("the whole way: a gap → fencing; commit only on a tick observed after fencing began with every runner key-less; answered when host-b holds the key", async () => {
    const s = setup();
    const check = s.op.apply({ cmd: "switchover", target: null, force: false, check: true, host: "host-b" });
    expect(check).toMatchObject({ ok: true, result: { host: "host-b" } });
    expect(check.ok && (check.result as { message: string }).message).not.toContain("no boundary hand-out");
    expect(s.op.apply({ cmd: "switchover", target: null, force: false, check: false, host: "host-b" })).toMatchObject({ ok: true });
    const done = s.op.waitSwitchover();
    s.step("holder", signing);
    expect(s.calls).toEqual(["begin host-b"]);
    expect(s.intent().switchover?.phase).toBe("fencing");
    // The gate fences the signer this tick: still a holder in this observation, no commit
    const fenceTick = s.step("holder", fencing);
    expect(fenceTick.plan.fences.map((a) => a.kind)).toContain("demote");
    expect(s.calls).toEqual(["begin host-b"]);
    const proven = s.step("standby", fencing);
    expect(s.calls).toEqual(["begin host-b", `commit ${proven.observation.atMs}`]);
    expect(s.intent().switchover?.phase).toBe("committing");
    s.commit({ kind: "handed-over" });
    await Bun.sleep(0);
    expect(s.intent().switchover?.phase).toBe("handed");
    s.setHolder(null);
    s.step("standby", { ...fencing, maySign: false, handingOverTo: null, holder: null });
    s.setHolder("host-b");
    s.step("standby", { ...fencing, maySign: false, handingOverTo: null, holder: "host-b" });
    const a = await done;
    expect(a).toMatchObject({ ok: true, result: { host: "host-b" } });
    expect(s.intent().switchover).toBeNull();
  });

  test("the check says when the target's standbys cannot be warm (no boundary grant this epoch)", () => {
    const s = setup();
    s.step("holder", { ...signing, grantedEpoch: null });
    const check = s.op.apply({ cmd: "switchover", target: null, force: false, check: true, host: "host-b" });
    expect(check.ok && (check.result as { message: string }).message).toContain("waits for the next boundary");
  });

  test("not proven key-less in time: abandoned before any txn, this host signs on", async () => {
    const s = setup();
    s.op.apply({ cmd: "switchover", target: null, force: false, check: false, host: "host-b" });
    const done = s.op.waitSwitchover();
    s.step("holder", signing);
    // #0 never answers as key-less (say its DELETE keeps failing)
    s.step("holder", fencing);
    s.step("holder", fencing, HANDOVER_FENCE_TIMEOUT_MS + 1);
    const a = await done;
    expect(a).toMatchObject({ ok: false, error: expect.stringContaining("signs on") });
    expect(s.calls.some((c) => c.startsWith("abort"))).toBe(true);
    expect(s.calls.some((c) => c.startsWith("commit"))).toBe(false);
  });

  test("the txn's answer lost: reported (lease revoked, runners key-less); etcd refusing before the txn: the host signs on", async () => {
    for (const [kind, says] of [["unknown", "answer was lost"], ["not-started", "signs on"]] as const) {
      const s = setup();
      s.op.apply({ cmd: "switchover", target: null, force: false, check: false, host: "host-b" });
      const done = s.op.waitSwitchover();
      s.step("holder", signing);
      s.step("holder", fencing);
      s.step("standby", fencing);
      s.commit({ kind, error: { message: "etcd: timeout" } });
      expect(await done).toMatchObject({ ok: false, error: expect.stringContaining(says) });
    }
  });

  test("with a host registry the answer waits for the target's entry and names its runner; without one in time, the host only", async () => {
    for (const [runnerAt, expected] of [[2, "host-b's #1 signs now"], [null, "host-b signs now (its daemon promotes"]] as const) {
      let ticks = 0;
      const s = setup({ signingRunnerOf: () => (runnerAt !== null && ticks >= runnerAt ? 1 : null) });
      s.op.apply({ cmd: "switchover", target: null, force: false, check: false, host: "host-b" });
      let answer: unknown = null;
      void s.op.waitSwitchover().then((a) => (answer = a));
      s.step("holder", signing);
      s.step("holder", fencing);
      s.step("standby", fencing);
      s.commit({ kind: "handed-over" });
      await Bun.sleep(0);
      s.setHolder("host-b");
      const after = { ...fencing, handingOverTo: null, holder: "host-b" };
      s.step("standby", after);
      await Bun.sleep(0);
      expect(answer).toBeNull(); // the key is held, the runner not known yet
      for (let i = 0; i < 30 && answer === null; i++) (ticks++, s.step("standby", after, 500), await Bun.sleep(0));
      expect(answer).toMatchObject({ ok: true, result: { host: "host-b", message: expect.stringContaining(expected) } });
      if (runnerAt !== null) expect(answer).toMatchObject({ result: { target: 1 } });
      else expect(ticks * 500).toBeGreaterThanOrEqual(HANDOVER_RUNNER_WAIT_MS);
    }
  });

  test("signingRunnerIn: only an entry read after the hand-over, of a host that may sign and keeps a signer", () => {
    const entry = (over: Partial<HostEntry>) => ({ host: "host-b", maySign: true, signer: 1, ...over }) as HostEntry;
    const round = (atMs: number, e: HostEntry) => ({ atMs, self: "host-a", read: { signer: null, entries: [e], invalid: [] }, memory: { leaseChanges: 0, peers: [] } }) as RegistryRound;
    expect(signingRunnerIn(round(2_000, entry({})), "host-b", 1_000)).toBe(1);
    expect(signingRunnerIn(round(900, entry({})), "host-b", 1_000)).toBeNull();
    expect(signingRunnerIn(round(2_000, entry({ maySign: false })), "host-b", 1_000)).toBeNull();
    expect(signingRunnerIn(round(2_000, entry({ signer: null })), "host-b", 1_000)).toBeNull();
    expect(signingRunnerIn(round(2_000, entry({})), "host-c", 1_000)).toBeNull();
    expect(signingRunnerIn(null, "host-b", 1_000)).toBeNull();
  });

  test("handed over but another host took the key (the target never came): a failure naming who holds it", async () => {
    const s = setup();
    s.op.apply({ cmd: "switchover", target: null, force: false, check: false, host: "host-b" });
    const done = s.op.waitSwitchover();
    s.step("holder", signing);
    s.step("holder", fencing);
    s.step("standby", fencing);
    s.commit({ kind: "handed-over" });
    await Bun.sleep(0);
    s.setHolder("host-c");
    s.step("standby", { ...fencing, handingOverTo: null, holder: "host-c" });
    expect(await done).toMatchObject({ ok: false, error: expect.stringContaining("host-c holds it now") });
  });
});

describe("control socket: switchover --host", () => {
  const base = mkdtempSync(join(tmpdir(), "jm-xh-"));
  afterAll(() => rmSync(base, { recursive: true, force: true }));
  test("the request carries the host; the answer names it; status shows the phase the command prints", async () => {
    const path = join(base, "c.sock");
    const s = setup();
    const control = await startControl({ path, version: "t", log: { ...quiet, debug() {} }, operator: s.op });
    const pump = async (k0: "holder" | "standby", c: ClusterObs) => control.onTick(s.step(k0, c));
    await pump("holder", signing);
    const check = askDaemon(path, { cmd: "switchover", target: null, force: false, check: true, host: "host-b" }, operatorResultSchema);
    await Bun.sleep(30);
    await pump("holder", signing);
    expect(await check).toMatchObject({ kind: "answer", result: { host: "host-b", message: expect.stringContaining("would hand signing over to host-b") } });
    const asked = askDaemon(path, { cmd: "switchover", target: null, force: false, check: false, host: "host-b" }, operatorResultSchema, { timeoutMs: 10_000 });
    await Bun.sleep(30);
    await pump("holder", signing); // accepted
    await pump("holder", signing); // released: fencing
    await pump("holder", fencing); // status shows the intent a tick saw: one tick later
    const st = await askDaemon(path, { cmd: "status" }, daemonViewSchema);
    expect(st.kind === "answer" && st.result.switchover).toMatchObject({ host: "host-b", phase: "fencing" });
    expect(st.kind === "answer" && phaseLine(st.result.switchover!)).toContain("fencing this host's runners");
    await pump("standby", fencing);
    s.commit({ kind: "handed-over" });
    await Bun.sleep(0);
    s.setHolder("host-b");
    await pump("standby", { ...fencing, handingOverTo: null, holder: "host-b" });
    expect(await asked).toMatchObject({ kind: "answer", result: { host: "host-b", handoverMs: expect.any(Number) } });
    await control.close();
  });
});
