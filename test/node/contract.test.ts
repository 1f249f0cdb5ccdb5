// Every example response of the OpenAPI spec and every real capture of NOTES.md parses, to the
// exact normalised values the master relies on.

import { describe, expect, test } from "bun:test";
import { createNodeApi } from "../../src/node/client.ts";
import { fixture, json, scriptedTransport, text } from "./fixtures.ts";

const utc = (y: number, mo: number, d: number, h: number, mi: number, s: number, ms = 0) => Date.UTC(y, mo - 1, d, h, mi, s, ms);

async function apiFor(method: string, path: string, file: string, status = 200, kind: "json" | "text" = "json") {
  const body = await fixture(file);
  return createNodeApi(scriptedTransport({ [`${method} ${path}`]: (kind === "json" ? json : text)(status, body) }));
}

describe("OpenAPI examples (openapi-v0.yaml, v0.8.14)", () => {
  test("the repaired examples differ from the spec text only by commas", async () => {
    const strip = (s: string) => s.replace(/[\s,]/g, "");
    for (const name of ["node-stats", "settings", "leaders-logs.rejected"]) {
      const verbatim = await fixture(`openapi/${name}.verbatim.txt`);
      const repaired = await fixture(`openapi/${name}.json`);
      expect(() => JSON.parse(verbatim)).toThrow();
      expect(strip(repaired)).toBe(strip(verbatim));
    }
  });

  test("GET /node/stats (numeric lastBlockHeight)", async () => {
    const api = await apiFor("GET", "/node/stats", "openapi/node-stats.json");
    expect(await api.stats()).toEqual({
      ok: true,
      value: {
        state: "Running",
        version: "jormungandr 0.8.9-30d20d2e",
        height: 202901,
        lastBlockDate: { epoch: 20, slot: 29 },
        lastBlockTimeMs: utc(2020, 1, 30, 23, 8, 22),
        lastReceivedBlockTimeMs: utc(2020, 1, 30, 23, 8, 4),
        uptimeS: 20032,
        nodeId: "ad24537cb009bedaebae3d247fecee9e14c57fe942e9bb0d",
      },
    });
  });

  test("GET /settings", async () => {
    const api = await apiFor("GET", "/settings", "openapi/settings.json");
    expect(await api.settings()).toEqual({
      ok: true,
      value: {
        block0Hash: "8d94ecfcc9a566f492e6335858db645691f628b012bed4ac2b1338b5690355a7",
        block0TimeMs: utc(2019, 7, 9, 12, 32, 51),
        slotDurationMs: 10_000,
        slotsPerEpoch: 60,
        consensusVersion: "bft",
        currSlotStartTimeMs: utc(2019, 7, 18, 22, 1, 17),
      },
    });
  });

  test("GET /leaders and POST /leaders", async () => {
    expect(await (await apiFor("GET", "/leaders", "openapi/leaders.get.json")).leaders()).toEqual({ ok: true, value: [1, 5] });
    const post = await apiFor("POST", "/leaders", "openapi/leaders.post.json");
    const secret = JSON.parse(await fixture("openapi/leaders.post.request.genesis.json"));
    expect(await post.addLeader(secret)).toEqual({ ok: true, value: 5 });
  });

  const logBase = {
    createdAtMs: utc(2019, 8, 19, 12, 25, 0, 417),
    scheduledAtMs: utc(2019, 8, 19, 23, 18, 35),
    scheduledAt: { epoch: 0, slot: 3923 },
    enclaveLeaderId: 1,
  };
  const finished = { wakeAtMs: utc(2019, 8, 19, 23, 18, 35, 1), finishedAtMs: utc(2019, 8, 19, 23, 19, 5, 10) };

  test("GET /leaders/logs: Pending", async () => {
    const api = await apiFor("GET", "/leaders/logs", "openapi/leaders-logs.pending.json");
    expect(await api.leaderLogs()).toEqual({
      ok: true,
      value: [{ ...logBase, wakeAtMs: null, finishedAtMs: null, status: { kind: "pending" } }],
    });
  });

  test("GET /leaders/logs: Block (the example says Block, not the schema's InABlock)", async () => {
    const api = await apiFor("GET", "/leaders/logs", "openapi/leaders-logs.block.json");
    expect(await api.leaderLogs()).toEqual({
      ok: true,
      value: [
        {
          ...logBase,
          ...finished,
          status: {
            kind: "block",
            block: "d9040ca57e513a36ecd3bb54207dfcd10682200929cad6ada46b521417964174",
            parent: "cc72d4ca957b03d7c795596b7fd7b1ff09c649c3e2877c508c0466abc8604832",
            chainLength: 201910,
          },
        },
      ],
    });
  });

  test("GET /leaders/logs: Rejected", async () => {
    const api = await apiFor("GET", "/leaders/logs", "openapi/leaders-logs.rejected.json");
    expect(await api.leaderLogs()).toEqual({
      ok: true,
      value: [{ ...logBase, ...finished, status: { kind: "rejected", reason: "Missed the deadline to compute the schedule" } }],
    });
  });

  test("GET /tip answers plain text", async () => {
    const api = await apiFor("GET", "/tip", "openapi/tip.txt", 200, "text");
    expect(await api.tip()).toEqual({ ok: true, value: "8d94ecfcc9a566f492e6335858db645691f628b012bed4ac2b1338b5690355a7" });
  });

  test("GET /shutdown answers 200 with no body", async () => {
    const api = await apiFor("GET", "/shutdown", "openapi/shutdown.txt", 200, "text");
    expect(await api.shutdown()).toEqual({ ok: true, value: undefined });
  });
});

describe("real captures (NOTES.md)", () => {
  test("GET /node/stats v0.8.14 Running: string height, +00:00 times", async () => {
    const api = await apiFor("GET", "/node/stats", "notes/node-stats.running.json");
    expect(await api.stats()).toEqual({
      ok: true,
      value: {
        state: "Running",
        version: "jormungandr 0.8.14-9ca427ef",
        height: 219845,
        lastBlockDate: { epoch: 84, slot: 13650 },
        lastBlockTimeMs: utc(2020, 3, 6, 12, 37, 57),
        lastReceivedBlockTimeMs: utc(2020, 3, 6, 12, 37, 58),
        uptimeS: 20032,
        nodeId: "ad24537cb009bedaebae3d247fecee9e14c57fe942e9bb0d",
      },
    });
  });

  test("GET /node/stats while bootstrapping: only state and version", async () => {
    const api = await apiFor("GET", "/node/stats", "notes/node-stats.bootstrapping.json");
    expect(await api.stats()).toEqual({
      ok: true,
      value: {
        state: "Bootstrapping",
        version: "jormungandr 0.8.14-9ca427ef",
        height: null,
        lastBlockDate: null,
        lastBlockTimeMs: null,
        lastReceivedBlockTimeMs: null,
        uptimeS: null,
        nodeId: null,
      },
    });
  });

  test("GET /settings ITN capture", async () => {
    const api = await apiFor("GET", "/settings", "notes/settings.itn.json");
    expect(await api.settings()).toEqual({
      ok: true,
      value: {
        block0Hash: "8e4d2a343f3dcf9330ad9035b3e8d168e6728904262f2c434a4f8f934ec7b676",
        block0TimeMs: utc(2019, 12, 13, 19, 13, 37),
        slotDurationMs: 2000,
        slotsPerEpoch: 43200,
        consensusVersion: "genesis",
        currSlotStartTimeMs: utc(2019, 12, 22, 10, 31, 36),
      },
    });
  });

  test("GET /leaders, empty enclave, POST /leaders bare integer", async () => {
    expect(await (await apiFor("GET", "/leaders", "notes/leaders.get.json")).leaders()).toEqual({ ok: true, value: [1] });
    expect(await (await apiFor("GET", "/leaders", "notes/leaders.get.empty.json")).leaders()).toEqual({ ok: true, value: [] });
    expect(await (await apiFor("POST", "/leaders", "notes/leaders.post.txt")).addLeader({})).toEqual({ ok: true, value: 1 });
  });

  test("GET /leaders/logs: nanosecond fractions cut to ms, null wake/finish", async () => {
    const api = await apiFor("GET", "/leaders/logs", "notes/leaders-logs.json");
    expect(await api.leaderLogs()).toEqual({
      ok: true,
      value: [
        {
          createdAtMs: utc(2020, 3, 6, 0, 0, 1, 417),
          scheduledAtMs: utc(2020, 3, 6, 7, 18, 35),
          scheduledAt: { epoch: 84, slot: 13117 },
          wakeAtMs: null,
          finishedAtMs: null,
          status: { kind: "pending" },
          enclaveLeaderId: 1,
        },
        {
          createdAtMs: utc(2020, 3, 6, 0, 0, 1, 417),
          scheduledAtMs: utc(2020, 3, 6, 9, 2, 11),
          scheduledAt: { epoch: 84, slot: 16225 },
          wakeAtMs: utc(2020, 3, 6, 9, 2, 11, 0),
          finishedAtMs: utc(2020, 3, 6, 9, 2, 11, 48),
          status: {
            kind: "block",
            block: "d9040ca57e513a36ecd3bb54207dfcd10682200929cad6ada46b521417964174",
            parent: "cc72d4ca957b03d7c795596b7fd7b1ff09c649c3e2877c508c0466abc8604832",
            chainLength: 220101,
          },
          enclaveLeaderId: 1,
        },
      ],
    });
  });

  test("503 'Full REST context not available yet' is not_ready", async () => {
    const api = await apiFor("GET", "/settings", "notes/not-ready.txt", 503, "text");
    expect(await api.settings()).toEqual({
      ok: false,
      error: { kind: "not_ready", status: 503, message: "GET /settings: HTTP 503 Full REST context not available yet" },
    });
  });

  test("DELETE of an unknown leader: 404 is ok(false)", async () => {
    const body = await fixture("notes/delete-unknown.txt");
    const api = createNodeApi(scriptedTransport({ "DELETE /leaders/7": text(404, body) }));
    expect(await api.removeLeader(7)).toEqual({ ok: true, value: false });
  });
});
