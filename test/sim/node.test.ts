import { describe, expect, test } from "bun:test";
import { ConnectionRefused, ConnectionReset, NODE_VERSION, REJECT_TOO_LATE, rfc3339, SimNode } from "../../src/sim/node.ts";
import { FAST_BOOT, FAST_BOOT_TOTAL_MS, nodeFixture, OTHER_SECRET, POOL_SECRET, settled } from "./helpers.ts";

// testChainParams (seed 7, 1 s slots, 60 slots/epoch): epoch 1 leader slots 19 25 32 47 50,
// epoch 2: 5 8 32 40 56. The fixture starts at slot 1.5 and is Running at 1.6.4.

type Log = {
  created_at_time: string;
  scheduled_at_time: string;
  scheduled_at_date: string;
  wake_at_time: string | null;
  finished_at_time: string | null;
  status: unknown;
  enclave_leader_id: number;
};

describe("schedule fixture", () => {
  test("the chain these tests rely on", () => {
    const { chain } = nodeFixture();
    expect(chain.leaderSlots(1)).toEqual([19, 25, 32, 47, 50]);
    expect(chain.leaderSlots(2)).toEqual([5, 8, 32, 40, 56]);
  });
});

describe("boot", () => {
  test("phases in order with the configured durations; until Running /node/stats is {state, version}", async () => {
    const f = nodeFixture();
    const seen: unknown[] = [];
    for (const dt of [0, 100, 100, 100, 999, 1, 99, 1]) {
      await f.clock.advance(dt);
      seen.push(await f.getJson("/node/stats"));
    }
    const states = seen.map((s) => (s as { state: string }).state);
    expect(states).toEqual([
      "StartingRestServer",
      "PreparingStorage",
      "PreparingBlock0",
      "Bootstrapping",
      "Bootstrapping",
      "StartingWorkers",
      "StartingWorkers",
      "Running",
    ]);
    expect(seen[3]).toEqual({ state: "Bootstrapping", version: NODE_VERSION });
  });

  test("every other endpoint answers 503 `Full REST context not available yet` until Running", async () => {
    const f = nodeFixture();
    await f.clock.advance(500);
    for (const [method, path] of [
      ["GET", "/settings"],
      ["GET", "/leaders"],
      ["POST", "/leaders"],
      ["DELETE", "/leaders/1"],
      ["GET", "/leaders/logs"],
      ["GET", "/tip"],
      ["GET", "/shutdown"],
      ["GET", "/network/stats"],
    ] as const) {
      const res = await f.call(method, path, method === "POST" ? POOL_SECRET : undefined);
      expect(res.status).toBe(503);
      expect(res.body).toBe("Full REST context not available yet");
    }
    expect(f.node.isAlive).toBe(true);
    await f.clock.advance(FAST_BOOT_TOTAL_MS);
    expect((await f.call("GET", "/leaders")).status).toBe(200);
  });

  test("slow boot: a longer Bootstrapping set during boot delays Running", async () => {
    const f = nodeFixture();
    await f.clock.advance(500);
    f.node.setBootstrapMs(10_000);
    await f.clock.advance(FAST_BOOT_TOTAL_MS);
    expect(f.node.state).toBe("Bootstrapping");
    await f.clock.advance(10_000);
    expect(f.node.state).toBe("Running");
  });

  test("a boot phase that ended while frozen, then re-timed before the thaw, completes once (one Running, one schedule)", async () => {
    // Found by the master's property test: a slow-boot fault on a frozen runner ran Bootstrapping's
    // end twice, so the node computed every later schedule twice and signed its slots twice.
    const f = nodeFixture({ secrets: [POOL_SECRET] });
    await f.clock.advance(300); // in Bootstrapping (ends at 1300)
    f.node.freeze();
    await f.clock.advance(2_000); // its end fired while frozen: deferred
    f.node.setBootstrapMs(1_500);
    f.node.thaw();
    await f.clock.advance(5_000);
    expect(f.journal.ofKind("running").length).toBe(1);
    expect(f.journal.ofKind("schedule_start").length).toBe(1);
  });
});

describe("REST shapes when Running", () => {
  test("node stats: the v0.8.14 keys, lastBlockHeight as a string, +00:00 whole-second times, uptime from Running", async () => {
    const f = nodeFixture();
    await f.boot();
    const s0 = (await f.getJson("/node/stats")) as Record<string, unknown>;
    expect(Object.keys(s0).sort()).toEqual(
      [
        "blockRecvCnt",
        "lastBlockContentSize",
        "lastBlockDate",
        "lastBlockFees",
        "lastBlockHash",
        "lastBlockHeight",
        "lastBlockSum",
        "lastBlockTime",
        "lastBlockTx",
        "lastReceivedBlockTime",
        "nodeId",
        "peerAvailableCnt",
        "peerQuarantinedCnt",
        "peerTotalCnt",
        "peerUnreachableCnt",
        "state",
        "txRecvCnt",
        "uptime",
        "version",
      ].sort(),
    );
    expect(s0.state).toBe("Running");
    expect(s0.lastBlockHeight).toMatch(/^\d+$/);
    expect(s0.lastBlockTime).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00$/);
    expect(s0.lastBlockDate).toMatch(/^\d+\.\d+$/);
    expect(s0.nodeId).toMatch(/^[0-9a-f]{48}$/);
    expect(s0.uptime).toBe(0);
    await f.clock.advance(10_000);
    const s1 = (await f.getJson("/node/stats")) as Record<string, unknown>;
    expect(s1.uptime).toBe(10);
    expect(s1.lastReceivedBlockTime).toMatch(/\+00:00$/);
  });

  test("settings: camelCase SettingsDto, integer slotDuration in seconds, whole-second block0Time", async () => {
    const f = nodeFixture();
    await f.boot();
    const s = (await f.getJson("/settings")) as Record<string, unknown>;
    expect(s.block0Time).toBe("2020-03-06T00:00:00+00:00");
    expect(s.slotDuration).toBe(1);
    expect(s.slotsPerEpoch).toBe(60);
    expect(s.block0Hash).toBe(f.chain.block0Hash);
    expect(s.consensusVersion).toBe("genesis");
    expect(typeof s.currSlotStartTime).toBe("string");
  });

  test("tip is the plain-text hash of the node's block; network stats list peers; unknown paths 404", async () => {
    const f = nodeFixture();
    await f.boot();
    const tip = await f.call("GET", "/tip");
    expect(tip.contentType).toStartWith("text/plain");
    expect(tip.body).toBe(f.chain.blockHash(f.node.height()));
    expect(tip.body).toMatch(/^[0-9a-f]{64}$/);
    expect(((await f.getJson("/network/stats")) as unknown[]).length).toBe(3);
    expect((await f.call("GET", "/nope")).status).toBe(404);
  });

  test("GET /shutdown answers 200 with an empty body, then the process exits after shutdownMs", async () => {
    const f = nodeFixture({ shutdownMs: 300 });
    await f.boot();
    const res = await f.call("GET", "/shutdown");
    expect(res).toEqual({ status: 200, body: "", contentType: expect.any(String) });
    await f.clock.advance(299);
    expect(f.node.isAlive).toBe(true);
    await f.clock.advance(1);
    expect(f.node.isAlive).toBe(false);
    expect(f.journal.ofKind("proc_exit").map((e) => e.reason)).toEqual(["shutdown"]);
  });

  test("rfc3339 mirrors chrono: fraction omitted when zero, else 3, 6 or 9 digits", () => {
    const t = Date.UTC(2020, 2, 6, 0, 0, 1);
    expect(rfc3339(t)).toBe("2020-03-06T00:00:01+00:00");
    expect(rfc3339(t + 417)).toBe("2020-03-06T00:00:01.417+00:00");
    expect(rfc3339(t + 417, 263_000)).toBe("2020-03-06T00:00:01.417263+00:00");
    expect(rfc3339(t + 417, 263_555)).toBe("2020-03-06T00:00:01.417263555+00:00");
    expect(rfc3339(t, 5)).toBe("2020-03-06T00:00:01.000000005+00:00");
  });
});

describe("enclave", () => {
  test("POST returns a bare integer id, max+1; the same node_id returns its id; GET lists ids", async () => {
    const f = nodeFixture();
    await f.boot();
    const a = await f.call("POST", "/leaders", POOL_SECRET);
    expect(a.status).toBe(200);
    expect(a.body).toBe("1");
    expect(a.contentType).toBe("application/json");
    expect((await f.call("POST", "/leaders", OTHER_SECRET)).body).toBe("2");
    expect((await f.call("POST", "/leaders", POOL_SECRET)).body).toBe("1");
    expect((await f.getJson("/leaders")) as number[]).toEqual([1, 2]);
    expect((await f.call("DELETE", "/leaders/1")).status).toBe(200);
    expect((await f.call("POST", "/leaders", POOL_SECRET)).body).toBe("3");
  });

  test("DELETE: 200 with an empty body, 404 `Leader with given ID not found`; an empty enclave hands out 1 again", async () => {
    const f = nodeFixture();
    await f.boot();
    await f.call("POST", "/leaders", POOL_SECRET);
    await f.call("POST", "/leaders", OTHER_SECRET);
    const del = await f.call("DELETE", "/leaders/2");
    expect(del.status).toBe(200);
    expect(del.body).toBe("");
    const missing = await f.call("DELETE", "/leaders/2");
    expect(missing.status).toBe(404);
    expect(missing.body).toBe("Leader with given ID not found");
    await f.call("DELETE", "/leaders/1");
    expect(await f.getJson("/leaders")).toEqual([]);
    expect((await f.call("POST", "/leaders", OTHER_SECRET)).body).toBe("1");
  });

  test("a malformed POST body is a 400, the enclave unchanged", async () => {
    const f = nodeFixture();
    await f.boot();
    expect((await f.node.handle({ method: "POST", path: "/leaders", body: "{nope" })).status).toBe(400);
    expect(await f.getJson("/leaders")).toEqual([]);
  });

  test("every change of keys is journalled; an idempotent re-post is not", async () => {
    const f = nodeFixture();
    await f.boot();
    await f.call("POST", "/leaders", POOL_SECRET);
    await f.call("POST", "/leaders", POOL_SECRET);
    await f.call("DELETE", "/leaders/1");
    expect(f.journal.ofKind("keys").map((e) => e.keys)).toEqual([[1], []]);
  });
});

describe("schedule", () => {
  test("a key added mid-epoch gets nothing until the next boundary, then the whole epoch from slot 1", async () => {
    const f = nodeFixture();
    await f.boot();
    await f.call("POST", "/leaders", POOL_SECRET);
    expect(await f.getJson("/leaders/logs")).toEqual([]);
    await f.clock.runUntil(f.slotStart(1, 59));
    expect(f.journal.ofKind("block")).toEqual([]);
    await f.clock.runUntil(f.slotStart(2, 0));
    const logs = (await f.getJson("/leaders/logs")) as Log[];
    expect(logs.map((l) => l.scheduled_at_date)).toEqual(["2.5", "2.8", "2.32", "2.40", "2.56"]);
    expect(logs.every((l) => l.status === "Pending" && l.enclave_leader_id === 1)).toBe(true);
    expect(logs[0]!.created_at_time.startsWith(rfc3339(f.slotStart(2, 0)).slice(0, 19))).toBe(true);
    await f.clock.runUntil(f.slotStart(2, 6));
    expect(f.journal.ofKind("block").map((b) => `${b.epoch}.${b.slot}`)).toEqual(["2.5"]);
  });

  test("the boundary computes for the keys held at that instant: none held, nothing scheduled", async () => {
    const f = nodeFixture();
    await f.boot();
    await f.clock.runUntil(f.slotStart(2, 1));
    await f.call("POST", "/leaders", POOL_SECRET);
    await f.clock.runUntil(f.slotStart(2, 59));
    expect(await f.getJson("/leaders/logs")).toEqual([]);
    expect(f.journal.ofKind("block")).toEqual([]);
  });

  test("--secret: a leader from boot; right after bootstrap it computes the rest of the epoch from the next slot", async () => {
    // Starts in slot 24.5: Running in slot 25 (a leader slot, in progress, so not scheduled).
    const { chain } = nodeFixture();
    const f = nodeFixture({ secrets: [POOL_SECRET] }, {}, chain.slotStartMs(1, 24) + 500);
    expect(f.journal.ofKind("proc_start")[0]!.keys).toEqual([1]);
    await f.boot();
    const logs = (await f.getJson("/leaders/logs")) as Log[];
    expect(logs.map((l) => l.scheduled_at_date)).toEqual(["1.32", "1.47", "1.50"]);
    expect(await f.getJson("/leaders")).toEqual([1]);
    const starts = f.journal.ofKind("schedule_start");
    expect(starts.map((s) => [s.trigger, s.epoch])).toEqual([["boot", 1]]);
  });

  test("log entries are snake_case, created when computed, with nanosecond fractions where the node has them", async () => {
    const f = nodeFixture({ secrets: [POOL_SECRET] });
    await f.boot();
    await f.clock.runUntil(f.slotStart(1, 20));
    const logs = (await f.getJson("/leaders/logs")) as Log[];
    const done = logs.find((l) => l.scheduled_at_date === "1.19")!;
    const pending = logs.find((l) => l.scheduled_at_date === "1.25")!;
    expect(Object.keys(done).sort()).toEqual([
      "created_at_time",
      "enclave_leader_id",
      "finished_at_time",
      "scheduled_at_date",
      "scheduled_at_time",
      "status",
      "wake_at_time",
    ]);
    expect(done.scheduled_at_time).toBe(rfc3339(f.slotStart(1, 19)));
    expect(done.created_at_time).toMatch(/^\S+T\S+\.\d{9}\+00:00$/);
    expect(done.wake_at_time).toMatch(/\.\d{9}\+00:00$/);
    expect(done.finished_at_time).toMatch(/\.\d{9}\+00:00$/);
    const block = (done.status as { Block: { block: string; parent: string; chain_length: number } }).Block;
    expect(block.block).toMatch(/^[0-9a-f]{64}$/);
    expect(block.parent).toMatch(/^[0-9a-f]{64}$/);
    expect(Number.isInteger(block.chain_length)).toBe(true);
    expect(pending.status).toBe("Pending");
    expect(pending.wake_at_time).toBeNull();
    expect(pending.finished_at_time).toBeNull();
  });

  test("computing takes scheduleComputeMs; slots that end meanwhile are rejected as too late", async () => {
    // Running at 1.6.4, computing until 1.25.5: slot 19 is over by then, slot 25 still in progress.
    const f = nodeFixture({ secrets: [POOL_SECRET], scheduleComputeMs: 19_100 });
    await f.boot();
    expect(f.node.isComputing).toBe(true);
    const statsWhileComputing = await settled(f.call("GET", "/node/stats"));
    expect(statsWhileComputing.done).toBe(true);
    await f.clock.runUntil(f.slotStart(1, 26));
    const logs = (await f.getJson("/leaders/logs")) as Log[];
    const byDate = Object.fromEntries(logs.map((l) => [l.scheduled_at_date, l]));
    expect(byDate["1.19"]!.status).toEqual({ Rejected: { reason: REJECT_TOO_LATE } });
    expect(byDate["1.25"]!.status).toHaveProperty("Block");
    expect(byDate["1.25"]!.wake_at_time!.startsWith(rfc3339(f.slotStart(1, 25) + 500).slice(0, 23))).toBe(true);
    expect(byDate["1.19"]!.created_at_time.startsWith(rfc3339(f.slotStart(1, 25) + 500).slice(0, 23))).toBe(true);
  });

  test("while computing, leader calls block and apply in arrival order the moment it ends, before any event fires", async () => {
    const f = nodeFixture({ secrets: [POOL_SECRET], scheduleComputeMs: 19_100 });
    await f.boot();
    await f.clock.runUntil(f.slotStart(1, 10));
    const list1 = f.call("GET", "/leaders");
    const del = f.call("DELETE", "/leaders/1");
    const list2 = f.call("GET", "/leaders");
    const logs = await settled(f.call("GET", "/leaders/logs"));
    expect(logs.done).toBe(true);
    expect((await settled(list1)).done).toBe(false);
    await f.clock.runUntil(f.slotStart(1, 25) + 499);
    expect((await settled(del)).done).toBe(false);
    await f.clock.runUntil(f.slotStart(1, 25) + 500);
    expect(JSON.parse((await list1).body)).toEqual([1]);
    expect((await del).status).toBe(200);
    expect(JSON.parse((await list2).body)).toEqual([]);
    await f.clock.runUntil(f.slotStart(1, 26));
    // Slot 25 was still in progress when computing ended, yet the queued DELETE came first.
    expect(f.journal.ofKind("block")).toEqual([]);
    expect(f.journal.ofKind("reject").map((r) => [r.slot, r.reason])).toEqual([
      [19, REJECT_TOO_LATE],
      [25, "Cannot sign the block: This leader 1 is not in the enclave"],
    ]);
  });

  test("an event due while another computation holds the enclave waits for it, behind a queued removal", async () => {
    // Boot computation 1.6.4 → 2.6.4 (60 s); the boundary's own computation is short (2.0 → 2.1).
    // Slot 2.5 comes due while the boot computation still holds the lock: signing waits, and the
    // removal sent at 2.3 is applied first, so nothing is signed (slot 5 is over by then anyway).
    const f = nodeFixture({ secrets: [POOL_SECRET], scheduleComputeMs: 60_000 });
    await f.boot();
    f.node.setScheduleComputeMs(1_000);
    await f.clock.runUntil(f.slotStart(2, 3));
    const del = f.call("DELETE", "/leaders/1");
    await f.clock.runUntil(f.slotStart(2, 9));
    expect((await del).status).toBe(200);
    expect(f.journal.ofKind("block").filter((b) => b.epoch === 2)).toEqual([]);
    const rejects = f.journal.ofKind("reject").filter((r) => r.epoch === 2).map((r) => [r.slot, r.reason]);
    expect(rejects).toEqual([
      [5, REJECT_TOO_LATE],
      [8, "Cannot sign the block: This leader 1 is not in the enclave"],
    ]);
  });

  test("on a clock that moves between reads, a queued removal is journalled at the computation's end, not after it", async () => {
    // Process mode reads the wall clock per journal line; the audit must not see the key held past
    // the end of the computation, which the enclave never allows.
    const base = nodeFixture();
    let drift = 0;
    const node = new SimNode({
      runner: 0, incarnation: 1, chain: base.chain, journal: base.journal, boot: FAST_BOOT, secrets: [POOL_SECRET], scheduleComputeMs: 2_000,
      sched: { now: () => base.clock.now() + (drift += 1), at: (t, fn) => base.clock.at(t, fn), sleep: (ms, sig) => base.clock.sleep(ms, sig) },
    });
    await base.clock.advance(FAST_BOOT_TOTAL_MS + 100);
    const del = node.handle({ method: "DELETE", path: "/leaders/1" });
    await base.clock.advance(3_000);
    expect((await del).status).toBe(200);
    const done = base.journal.ofKind("schedule_done")[0]!;
    const keys = base.journal.ofKind("keys").at(-1)!;
    expect(keys.keys).toEqual([]);
    expect(keys.t).toBe(done.t);
  });

  test("a REST hang that begins while a removal waits for the enclave withholds the answer, not the removal", async () => {
    const f = nodeFixture({ secrets: [POOL_SECRET], scheduleComputeMs: 19_100 });
    await f.boot();
    await f.clock.runUntil(f.slotStart(1, 10));
    const del = f.call("DELETE", "/leaders/1");
    await f.clock.runUntil(f.slotStart(1, 12));
    f.node.setRestHang(true);
    await f.clock.runUntil(f.slotStart(1, 26));
    expect(f.node.leaderIds()).toEqual([]);
    expect((await settled(del)).done).toBe(false);
    expect(f.journal.ofKind("block")).toEqual([]);
    f.node.setRestHang(false);
    expect((await del).status).toBe(200);
  });

  test("REST 500s that begin while a removal waits for the enclave replace its answer, not the removal", async () => {
    const f = nodeFixture({ secrets: [POOL_SECRET], scheduleComputeMs: 19_100 });
    await f.boot();
    await f.clock.runUntil(f.slotStart(1, 10));
    const del = f.call("DELETE", "/leaders/1");
    await f.clock.runUntil(f.slotStart(1, 12));
    f.node.setRest500(true);
    await f.clock.runUntil(f.slotStart(1, 26));
    expect(f.node.leaderIds()).toEqual([]);
    expect((await del).status).toBe(500);
    expect(f.journal.ofKind("block")).toEqual([]);
    // A call that arrives during the 500s never reaches a handler: no effect.
    const post = await f.call("POST", "/leaders", POOL_SECRET);
    expect(post.status).toBe(500);
    expect(f.node.leaderIds()).toEqual([]);
  });

  test("no keys, no computing time: leader calls right after a keyless boundary do not block", async () => {
    const f = nodeFixture({ scheduleComputeMs: 30_000 });
    await f.boot();
    await f.clock.runUntil(f.slotStart(2, 0) + 1);
    expect(f.node.isComputing).toBe(false);
    expect((await settled(f.call("POST", "/leaders", POOL_SECRET))).done).toBe(true);
  });
});

describe("events", () => {
  test("key present: block produced, journalled, status Block; key absent: Rejected cannot sign; re-adding id 1 revives", async () => {
    const f = nodeFixture({ secrets: [POOL_SECRET] });
    await f.boot();
    await f.call("DELETE", "/leaders/1");
    await f.clock.runUntil(f.slotStart(1, 21));
    expect((await f.call("POST", "/leaders", POOL_SECRET)).body).toBe("1");
    await f.clock.runUntil(f.slotStart(1, 26));
    const logs = (await f.getJson("/leaders/logs")) as Log[];
    const byDate = Object.fromEntries(logs.map((l) => [l.scheduled_at_date, l]));
    expect(byDate["1.19"]!.status).toEqual({ Rejected: { reason: "Cannot sign the block: This leader 1 is not in the enclave" } });
    expect(byDate["1.25"]!.status).toHaveProperty("Block");
    const blocks = f.journal.ofKind("block");
    expect(blocks.map((b) => [b.slot, b.runner, b.inc, b.leaderId, b.t])).toEqual([[25, 0, 1, 1, f.slotStart(1, 25)]]);
    expect(blocks[0]!.chainLength).toBe(f.chain.lastBlockAtSlot(60 + 25 - 1).height + 1);
  });

  test("with the pool's node_id set, a key of another pool gets none of the pool's slots", async () => {
    const f = nodeFixture({ poolNodeId: POOL_SECRET.genesis.node_id });
    await f.boot();
    await f.call("POST", "/leaders", OTHER_SECRET);
    await f.call("POST", "/leaders", POOL_SECRET);
    await f.clock.runUntil(f.slotStart(2, 6));
    const logs = (await f.getJson("/leaders/logs")) as Log[];
    expect(logs.map((l) => [l.scheduled_at_date, l.enclave_leader_id])).toEqual([
      ["2.5", 2],
      ["2.8", 2],
      ["2.32", 2],
      ["2.40", 2],
      ["2.56", 2],
    ]);
    expect(f.journal.ofKind("block").map((b) => [b.slot, b.leaderId])).toEqual([[5, 2]]);
  });

  test("a different key that got id 1 signs the pending events of id 1 (the enclave looks up by id)", async () => {
    const f = nodeFixture({ secrets: [POOL_SECRET] });
    await f.boot();
    await f.call("DELETE", "/leaders/1");
    expect((await f.call("POST", "/leaders", OTHER_SECRET)).body).toBe("1");
    await f.clock.runUntil(f.slotStart(1, 20));
    expect(f.journal.ofKind("block").map((b) => b.slot)).toEqual([19]);
  });

  test("frozen through the slot start, thawed within the slot: fires on thaw and produces", async () => {
    const f = nodeFixture({ secrets: [POOL_SECRET] });
    await f.boot();
    await f.clock.runUntil(f.slotStart(1, 18) + 500);
    f.node.freeze();
    await f.clock.runUntil(f.slotStart(1, 19) + 700);
    expect(f.journal.ofKind("block")).toEqual([]);
    f.node.thaw();
    expect(f.journal.ofKind("block").map((b) => [b.slot, b.t])).toEqual([[19, f.slotStart(1, 19) + 700]]);
  });

  test("thawed after the slot ended: Rejected too late, no block", async () => {
    const f = nodeFixture({ secrets: [POOL_SECRET] });
    await f.boot();
    await f.clock.runUntil(f.slotStart(1, 18) + 500);
    f.node.freeze();
    await f.clock.runUntil(f.slotStart(1, 20));
    f.node.thaw();
    expect(f.journal.ofKind("block")).toEqual([]);
    expect(f.journal.ofKind("reject").map((r) => [r.slot, r.reason])).toEqual([[19, REJECT_TOO_LATE]]);
  });

  test("frozen: REST requests wait in the socket and are answered on thaw", async () => {
    const f = nodeFixture();
    await f.boot();
    f.node.freeze();
    const pending = f.call("GET", "/node/stats");
    await f.clock.advance(5000);
    expect((await settled(pending)).done).toBe(false);
    f.node.thaw();
    expect((await pending).status).toBe(200);
  });

  test("frozen across a boundary: the schedule is computed on thaw, for the keys held then", async () => {
    const f = nodeFixture();
    await f.boot();
    await f.call("POST", "/leaders", POOL_SECRET);
    await f.clock.runUntil(f.slotStart(1, 59));
    f.node.freeze();
    await f.clock.runUntil(f.slotStart(2, 3));
    expect(f.journal.ofKind("schedule_start")).toEqual([]);
    f.node.thaw();
    const starts = f.journal.ofKind("schedule_start");
    expect(starts.map((s) => [s.t, s.epoch, s.slots])).toEqual([[f.slotStart(2, 3), 2, [5, 8, 32, 40, 56]]]);
  });
});

describe("height", () => {
  test("follows the network tip within 0–1 block, monotone", async () => {
    const f = nodeFixture({ viewLagMs: 900 });
    await f.boot();
    let prev = 0;
    let behind = 0;
    for (let i = 0; i < 600; i++) {
      await f.clock.advance(250);
      const h = f.node.height();
      const tip = f.chain.tipHeight(f.clock.now());
      expect(h).toBeLessThanOrEqual(tip);
      expect(h).toBeGreaterThanOrEqual(tip - 1);
      expect(h).toBeGreaterThanOrEqual(prev);
      if (h < tip) behind++;
      prev = h;
    }
    expect(behind).toBeGreaterThan(0);
    const stats = (await f.getJson("/node/stats")) as { lastBlockHeight: string };
    expect(Number(stats.lastBlockHeight)).toBe(f.node.height());
  });

  test("stuck: the height stops while the network moves on", async () => {
    const f = nodeFixture();
    await f.boot();
    f.node.setStuck(true);
    const h = f.node.height();
    await f.clock.advance(60_000);
    expect(f.node.height()).toBe(h);
    expect(f.chain.tipHeight(f.clock.now())).toBeGreaterThan(h + 10);
    f.node.setStuck(false);
    expect(f.node.height()).toBeGreaterThan(h + 10);
  });

  test("a stuck leader signs on the tip it sees, which the network has left", async () => {
    const f = nodeFixture({ secrets: [POOL_SECRET] });
    await f.boot();
    await f.clock.runUntil(f.slotStart(2, 1));
    f.node.setStuck(true);
    const h = f.node.height();
    await f.clock.runUntil(f.slotStart(2, 59));
    const moved = f.journal.ofKind("block").filter((b) => f.chain.lastBlockAtSlot(b.epoch * 60 + b.slot - 1).height > h);
    expect(moved.length).toBeGreaterThan(0);
    for (const b of moved) expect(b.chainLength).toBe(h + 1);
  });
});

describe("leader logs LRU", () => {
  test("older epochs stay listed", async () => {
    const f = nodeFixture({ secrets: [POOL_SECRET] });
    await f.boot();
    await f.clock.runUntil(f.slotStart(3, 1));
    const dates = ((await f.getJson("/leaders/logs")) as Log[]).map((l) => l.scheduled_at_date);
    expect(dates.filter((d) => d.startsWith("1.")).length).toBe(5);
    expect(dates.filter((d) => d.startsWith("2.")).length).toBe(5);
    expect(dates.filter((d) => d.startsWith("3.")).length).toBe(5);
  });

  test("holds at most logs_capacity entries, dropping the oldest", async () => {
    const f = nodeFixture({ secrets: [POOL_SECRET], logsCapacity: 7 });
    await f.boot();
    await f.clock.runUntil(f.slotStart(3, 1));
    const dates = ((await f.getJson("/leaders/logs")) as Log[]).map((l) => l.scheduled_at_date);
    expect(dates).toEqual(["2.32", "2.40", "2.56", ...f.chain.leaderSlots(3).map((s) => `3.${s}`)].slice(-7));
  });
});

describe("process faults and exit", () => {
  test("REST hang: accepted, never answered; the connection resets when the process exits", async () => {
    const f = nodeFixture();
    await f.boot();
    f.node.setRestHang(true);
    const hung = f.call("GET", "/node/stats");
    await f.clock.advance(60_000);
    expect((await settled(hung)).done).toBe(false);
    f.node.kill();
    await expect(hung).rejects.toBeInstanceOf(ConnectionReset);
    await expect(f.call("GET", "/node/stats")).rejects.toBeInstanceOf(ConnectionRefused);
  });

  test("REST hang cleared: the waiting requests are answered", async () => {
    const f = nodeFixture();
    await f.boot();
    f.node.setRestHang(true);
    const hung = f.call("GET", "/node/stats");
    f.node.setRestHang(false);
    expect((await hung).status).toBe(200);
  });

  test("REST 500 on every endpoint, stats included", async () => {
    const f = nodeFixture();
    await f.boot();
    f.node.setRest500(true);
    expect((await f.call("GET", "/node/stats")).status).toBe(500);
    expect((await f.call("GET", "/leaders")).status).toBe(500);
  });

  test("SIGTERM: keeps running timers during shutdown (signs a due slot), then exits", async () => {
    const f = nodeFixture({ secrets: [POOL_SECRET] });
    await f.boot();
    await f.clock.runUntil(f.slotStart(1, 18) + 900);
    f.node.terminate(300);
    await f.clock.runUntil(f.slotStart(1, 20));
    expect(f.journal.ofKind("block").map((b) => b.slot)).toEqual([19]);
    expect(f.node.isAlive).toBe(false);
    expect(f.journal.ofKind("proc_exit").map((e) => [e.t, e.reason])).toEqual([[f.slotStart(1, 19) + 200, "sigterm"]]);
  });

  test("SIGTERM to a frozen process is handled only on thaw; SIGKILL works even frozen", async () => {
    const f = nodeFixture();
    await f.boot();
    f.node.freeze();
    f.node.terminate(300);
    await f.clock.advance(10_000);
    expect(f.node.isAlive).toBe(true);
    f.node.thaw();
    await f.clock.advance(299);
    expect(f.node.isAlive).toBe(true);
    await f.clock.advance(1);
    expect(f.journal.ofKind("proc_exit").map((e) => e.reason)).toEqual(["sigterm"]);

    const g = nodeFixture();
    await g.boot();
    g.node.freeze();
    g.node.terminate(300);
    g.node.kill();
    expect(g.node.isAlive).toBe(false);
    expect(g.journal.ofKind("proc_exit").map((e) => e.reason)).toEqual(["sigkill"]);
  });

  test("an exited process fires nothing more", async () => {
    const f = nodeFixture({ secrets: [POOL_SECRET] });
    await f.boot();
    f.node.kill("crash");
    await f.clock.runUntil(f.slotStart(2, 59));
    expect(f.journal.ofKind("block")).toEqual([]);
    expect(f.journal.ofKind("schedule_start").length).toBe(1);
  });
});
