// The HTTP simulator on 127.0.0.1 driven by the real HTTP client, in real time: boot, promote,
// boundary, demote, revive, too late, crash. A 6-slot epoch of 1 s slots where slots 1..5 are all
// the pool's keeps it to about eight seconds.
import { afterAll, describe, expect, test } from "bun:test";
import { createNodeApi, httpTransport } from "../../src/node/client.ts";
import type { LeaderLog } from "../../src/node/types.ts";
import { Chain, testChainParams } from "../../src/sim/chain.ts";
import { RealScheduler } from "../../src/sim/clock.ts";
import { MemoryJournal } from "../../src/sim/journal.ts";
import { REJECT_TOO_LATE, SimNode } from "../../src/sim/node.ts";
import { parseFault, serveNode, serveWorld, type SimServer } from "../../src/sim/server.ts";
import { World } from "../../src/sim/world.ts";
import { POOL_SECRET } from "./helpers.ts";
import { freeLowPorts } from "../ports.ts";

const SLOTS = 6;
const sleepUntil = (t: number) => Bun.sleep(Math.max(0, t - Date.now()));
const servers: SimServer[] = [];
afterAll(() => {
  for (const s of servers) s.stop();
});

describe("HTTP simulator", () => {
  test("boot, promote, boundary, demote, revive, too late, crash", async () => {
    const now = Date.now();
    // The next boundary 1.5–2.5 s from now.
    const boundary = Math.ceil((now + 1500) / 1000) * 1000;
    const chain = new Chain(
      testChainParams({ block0TimeMs: boundary - 10 * SLOTS * 1000, slotsPerEpoch: SLOTS, leaderSlotsPerEpoch: SLOTS - 1 }),
    );
    const epoch = chain.epochAt(boundary);
    const at = (slot: number, plusMs = 0) => chain.slotStartMs(epoch, slot) + plusMs;
    const journal = new MemoryJournal();
    let server: SimServer | null = null;
    const node = new SimNode({
      runner: 0,
      incarnation: 1,
      chain,
      sched: new RealScheduler(),
      journal,
      boot: { StartingRestServer: 50, PreparingStorage: 50, PreparingBlock0: 50, Bootstrapping: 200, StartingWorkers: 50 },
      onExit: () => server?.stop(),
    });
    server = serveNode(node, { journal });
    servers.push(server);
    const api = createNodeApi(httpTransport(`${server.url}/api/v0`, { timeoutMs: 300 }));
    const logsOf = async (): Promise<LeaderLog[]> => {
      const r = await api.leaderLogs();
      if (!r.ok) throw new Error(r.error.message);
      return r.value;
    };
    const statusAt = async (slot: number) => (await logsOf()).find((l) => l.scheduledAt.epoch === epoch && l.scheduledAt.slot === slot)?.status;

    // Boot: stats answer with the state, everything else is "not ready".
    const booting = await api.stats();
    expect(booting.ok && booting.value.state !== "Running" && booting.value.height === null).toBe(true);
    expect(await api.leaders()).toMatchObject({ ok: false, error: { kind: "not_ready", status: 503 } });
    await Bun.sleep(500);
    const running = await api.stats();
    expect(running.ok && running.value.state === "Running" && running.value.height! > 0).toBe(true);
    expect((await api.settings()).ok).toBe(true);
    expect((await api.tip()).ok).toBe(true);

    // Promote mid-epoch: the key gets nothing before the boundary.
    expect(await api.addLeader(POOL_SECRET)).toEqual({ ok: true, value: 1 });
    expect(await logsOf()).toEqual([]);

    // Boundary: the schedule of the new epoch, slots 1..5; slot 1 is produced.
    await sleepUntil(at(1, 300));
    expect((await logsOf()).length).toBe(SLOTS - 1);
    expect(await statusAt(1)).toMatchObject({ kind: "block" });

    // Demote: slot 2 cannot be signed.
    expect(await api.removeLeader(1)).toEqual({ ok: true, value: true });
    expect(await api.removeLeader(1)).toEqual({ ok: true, value: false });
    await sleepUntil(at(2, 300));
    expect(await statusAt(2)).toEqual({ kind: "rejected", reason: "Cannot sign the block: This leader 1 is not in the enclave" });

    // Revive: the empty enclave hands out id 1 again and the pending slot 3 is produced.
    expect(await api.addLeader(POOL_SECRET)).toEqual({ ok: true, value: 1 });
    await sleepUntil(at(3, 300));
    expect(await statusAt(3)).toMatchObject({ kind: "block" });

    // Too late: frozen over all of slot 4; the REST call times out meanwhile; thawed in slot 5,
    // slot 4 is rejected and slot 5 still produced.
    await sleepUntil(at(3, 900));
    node.freeze();
    await sleepUntil(at(4, 200));
    expect(await api.stats()).toMatchObject({ ok: false, error: { kind: "unreachable", reason: "timeout" } });
    await sleepUntil(at(5, 100));
    node.thaw();
    await Bun.sleep(50);
    expect(await statusAt(4)).toEqual({ kind: "rejected", reason: REJECT_TOO_LATE });
    expect(await statusAt(5)).toMatchObject({ kind: "block" });

    // Control endpoints bypass faults.
    const fault = await fetch(`${server.url}/sim/fault`, { method: "POST", body: JSON.stringify({ kind: "restHang" }) });
    expect(fault.status).toBe(200);
    expect(await api.leaders()).toMatchObject({ ok: false, error: { kind: "unreachable", reason: "timeout" } });
    const state = (await (await fetch(`${server.url}/sim/state`)).json()) as { faults: { restHang: boolean }; keys: number[] };
    expect(state.faults.restHang).toBe(true);
    expect(state.keys).toEqual([1]);
    await fetch(`${server.url}/sim/fault`, { method: "POST", body: JSON.stringify({ kind: "restHang", on: false }) });
    expect((await api.leaders()).ok).toBe(true);

    // Crash: the port is closed, the client sees the node unreachable.
    await fetch(`${server.url}/sim/fault`, { method: "POST", body: JSON.stringify({ kind: "crash" }) });
    await Bun.sleep(100);
    expect(node.isAlive).toBe(false);
    const gone = await api.stats();
    expect(gone.ok).toBe(false);
    expect(!gone.ok && gone.error.kind).toBe("unreachable");
    expect(!gone.ok && gone.error.kind === "unreachable" && gone.error.reason).not.toBe("timeout");
    expect(journal.ofKind("block").map((b) => b.slot)).toEqual([1, 3, 5]);
  }, 20_000);

  test("a real-time World on loopback ports: open while the process lives, refused while it is down", async () => {
    const w = new World({
      chain: testChainParams({ block0TimeMs: Math.floor(Date.now() / 1000) * 1000 - 600_000 }),
      runners: 2,
      clock: new RealScheduler(),
      boot: { StartingRestServer: 10, PreparingStorage: 10, PreparingBlock0: 10, Bootstrapping: 50, StartingWorkers: 10 },
      restartDelayMs: 150,
    });
    const base = freeLowPorts(3);
    const http = serveWorld(w, { portOf: (id) => base + 1 + id });
    try {
      const api = (id: number) => createNodeApi(httpTransport(`${http.urlOf(id)}/api/v0`, { timeoutMs: 300 }));
      expect(await api(0).stats()).toMatchObject({ ok: false, error: { kind: "unreachable", reason: "refused" } });
      await w.services.start(0);
      await Bun.sleep(150);
      const up = await api(0).stats();
      expect(up.ok && up.value.state).toBe("Running");
      await fetch(`${http.urlOf(0)}/sim/fault`, { method: "POST", body: JSON.stringify({ kind: "crash" }) });
      await Bun.sleep(60);
      expect(await api(0).stats()).toMatchObject({ ok: false, error: { kind: "unreachable", reason: "refused" } });
      await Bun.sleep(300);
      expect((await api(0).stats()).ok).toBe(true);
      expect(w.node(0)!.incarnation).toBe(2);
      expect(await api(1).stats()).toMatchObject({ ok: false, error: { kind: "unreachable" } });
    } finally {
      http.stop();
      w.dispose();
    }
  });

  test("fault bodies are validated", () => {
    expect(parseFault('{"kind":"crash"}')).toEqual({ kind: "crash" });
    expect(parseFault('{"kind":"nope"}')).toContain("expected");
    expect(parseFault('{"kind":"slowBoot"}')).toContain("bootstrapMs");
    expect(parseFault("x")).toBe("body is not JSON");
  });
});
