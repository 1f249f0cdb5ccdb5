import { describe, expect, test } from "bun:test";
import type { UnitState } from "../../src/ports.ts";
import { EXIT_CRITICAL, EXIT_OK, statusModel, type StatusInput, type StatusRunnerInput } from "../../src/status/model.ts";
import { renderStatus, statusJson } from "../../src/status/render.ts";
import type { LeaderLog, NodeResult, NodeStats, Settings } from "../../src/node/types.ts";

// Epoch 10 starts at 600 000 ms (60 slots of 1 s); "now" is slot 20 of epoch 10.
const settings: Settings = { block0Hash: "h", block0TimeMs: 0, slotDurationMs: 1000, slotsPerEpoch: 60, consensusVersion: "genesis_praos", currSlotStartTimeMs: null };
const NOW = 620_500;

const unit = (id: number, over: Partial<UnitState> = {}): UnitState => ({
  id,
  activeState: "active",
  subState: "running",
  mainPid: 1000 + id,
  sinceMs: NOW - 3_600_000,
  restarts: 0,
  frozen: false,
  ...over,
});
const stats = (height: number | null, state: NodeStats["state"] = "Running"): NodeResult<NodeStats> => ({
  ok: true,
  value: { state, version: "jormungandr 0.8.19", height, lastBlockDate: null, lastBlockTimeMs: null, lastReceivedBlockTimeMs: null, uptimeS: 100, nodeId: null },
});
const pending = (epoch: number, slot: number): LeaderLog => ({
  createdAtMs: 0,
  scheduledAtMs: (epoch * 60 + slot) * 1000,
  scheduledAt: { epoch, slot },
  wakeAtMs: null,
  finishedAtMs: null,
  status: { kind: "pending" },
  enclaveLeaderId: 1,
});
const runner = (id: number, o: Partial<StatusRunnerInput> & { keys?: number[] | null; height?: number | null } = {}): StatusRunnerInput => ({
  id,
  unit: o.unit === undefined ? unit(id) : o.unit,
  stats: o.stats ?? stats(o.height === undefined ? 500 : o.height),
  leaders: o.leaders ?? (o.keys === null ? { ok: false, error: { kind: "unreachable", reason: "timeout", message: "t" } } : { ok: true, value: o.keys ?? [] }),
  logs: o.logs ?? { ok: true, value: [] },
});
const input = (runners: StatusRunnerInput[], over: Partial<StatusInput> = {}): StatusInput => ({
  nowMs: NOW,
  cntRunners: 3,
  runners,
  settings,
  pooltool: null,
  systemdError: null,
  ...over,
});

describe("statusModel exit code", () => {
  const cases: [string, StatusRunnerInput[], number, string][] = [
    ["one Running holder", [runner(0, { keys: [1] }), runner(1), runner(2)], EXIT_OK, "#0 holds the key and is Running"],
    ["no holder", [runner(0), runner(1), runner(2)], EXIT_CRITICAL, "no runner holds the key"],
    ["two holders", [runner(0, { keys: [1] }), runner(1, { keys: [1] }), runner(2)], EXIT_CRITICAL, "2 runners may sign outside a hand-out (#0, #1)"],
    ["one holder, frozen", [runner(0, { keys: [1], unit: unit(0, { frozen: true }) }), runner(1), runner(2)], EXIT_CRITICAL, "#0 holds the key but is frozen"],
    ["one holder, still bootstrapping", [runner(0, { keys: [1], stats: stats(null, "Bootstrapping") }), runner(1), runner(2)], EXIT_CRITICAL, "#0 holds the key but is Bootstrapping"],
    [
      "a leftover unit beyond cnt_runners holding the key counts",
      [runner(0, { keys: [1] }), runner(1), runner(2), runner(3, { keys: [1] })],
      EXIT_CRITICAL,
      "(#0, #3)",
    ],
    ["keys unknown are named", [runner(0), runner(1, { keys: null }), runner(2)], EXIT_CRITICAL, "keys unknown for #1"],
  ];
  for (const [name, runners, code, verdict] of cases) {
    test(name, () => {
      const m = statusModel(input(runners));
      expect(m.exitCode as number).toBe(code);
      expect(m.verdict).toContain(verdict);
    });
  }
});

describe("statusModel rows and header", () => {
  test("epoch, slot and time to the boundary from the settings", () => {
    const m = statusModel(input([runner(0, { keys: [1] })]));
    expect([m.epoch, m.slot, m.slotsPerEpoch, m.toBoundaryMs]).toEqual([10, 20, 60, 39_500]);
  });

  test("lag is measured against the best of the runners and PoolTool's majority max", () => {
    const m = statusModel(input([runner(0, { height: 500 }), runner(1, { height: 497 })], { pooltool: { majorityMax: 502, error: null } }));
    expect(m.bestHeight).toBe(502);
    expect(m.rows.map((r) => r.lag)).toEqual([2, 5]);
    expect(statusModel(input([runner(0, { height: 500 }), runner(1, { height: 497 })])).rows.map((r) => r.lag)).toEqual([0, 3]);
  });

  test("events left count this epoch's pending events still ahead; next event is the earliest ahead", () => {
    const logs: NodeResult<LeaderLog[]> = { ok: true, value: [pending(10, 5), pending(10, 25), pending(10, 40), pending(11, 3), { ...pending(10, 30), status: { kind: "rejected", reason: "x" } }] };
    const r = statusModel(input([runner(0, { keys: [1], logs })])).rows[0]!;
    expect(r.eventsLeft).toBe(2);
    expect(r.nextEventInMs).toBe(625_000 - NOW);
  });

  test("a runner whose REST does not answer shows why; unit uptime and restarts come from systemd", () => {
    const r = statusModel(
      input([runner(0, { stats: { ok: false, error: { kind: "unreachable", reason: "refused", message: "x" } }, unit: unit(0, { restarts: 4, sinceMs: NOW - 90_000 }) })]),
    ).rows[0]!;
    expect(r.restError).toBe("refused");
    expect(r.uptimeMs).toBe(90_000);
    expect(r.restarts).toBe(4);
    const booting = statusModel(input([runner(0, { stats: { ok: false, error: { kind: "not_ready", status: 503, message: "" } } })])).rows[0]!;
    expect(booting.nodeState).toBe("Booting");
    expect(booting.restError).toBe("booting (HTTP 503)");
  });

  test("inactive units beyond cnt_runners are not shown; active ones are, as extras", () => {
    const idle: StatusRunnerInput = { id: 4, unit: unit(4, { activeState: "inactive", subState: "dead", mainPid: 0 }), stats: null, leaders: null, logs: null };
    const m = statusModel(input([runner(0, { keys: [1] }), runner(1), runner(2), idle, { ...idle, id: 5, unit: unit(5) }]));
    expect(m.rows.map((r) => [r.id, r.leftover])).toEqual([[0, false], [1, false], [2, false], [5, true]]);
  });

  test("without settings (nothing Running) the epoch is unknown and events are counted without it", () => {
    const m = statusModel(input([runner(0, { stats: stats(null, "Bootstrapping") })], { settings: null }));
    expect(m.epoch).toBeNull();
    expect(m.toBoundaryMs).toBeNull();
  });
});

describe("renderStatus", () => {
  test("a header, one table row per runner with the signer marked, and the verdict", () => {
    const logs: NodeResult<LeaderLog[]> = { ok: true, value: [pending(10, 25), pending(10, 40)] };
    const m = statusModel(
      input([runner(0, { keys: [1], logs, height: 500 }), runner(1, { logs, height: 499 }), runner(2, { unit: unit(2, { activeState: "inactive", subState: "dead", mainPid: 0 }), stats: { ok: false, error: { kind: "unreachable", reason: "refused", message: "" } }, keys: null, logs: { ok: false, error: { kind: "unreachable", reason: "refused", message: "" } } })], {
        pooltool: { majorityMax: 500, error: null },
      }),
    );
    const text = renderStatus(m);
    expect(text).toBe(
      [
        "epoch 10 · slot 20/60 · next epoch in 40 s",
        "best height 500 · PoolTool majority max 500",
        "",
        "RUNNER  UNIT            NODE     HEIGHT  LAG  KEY     WARM  EVENTS LEFT  NEXT EVENT  UPTIME  RESTARTS",
        "#0      active/running  Running  500     0    SIGNER  yes   2            in 5 s      60 min  0",
        "#1      active/running  Running  499     1    no      yes   2            in 5 s      60 min  0",
        "#2      inactive/dead   refused  -       -    ?       no    -            -           -       0",
        "",
        "OK: #0 holds the key and is Running",
      ].join("\n"),
    );
    expect(JSON.parse(statusJson(m))).toMatchObject({ exitCode: 0, signer: 0, epoch: 10, rows: [{ id: 0, keyHeld: true, eventsLeft: 2, warm: true }, { warm: true }, { warm: false }] });
  });
});
