// The parser's behaviours one by one: status mapping, normalisation, tolerance, and malformed
// bodies named by endpoint and field.

import { describe, expect, test } from "bun:test";
import { createNodeApi, fieldPath } from "../../src/node/client.ts";
import type { NodeApi, NodeError, NodeResult, RawResponse } from "../../src/node/types.ts";
import { json, scriptedTransport, text } from "./fixtures.ts";

const RUNNING = {
  state: "Running",
  version: "jormungandr 0.8.14-9ca427ef",
  lastBlockHeight: "219845",
  lastBlockDate: "84.13650",
  lastBlockTime: "2020-03-06T12:37:57+00:00",
  lastReceivedBlockTime: "2020-03-06T12:37:58+00:00",
  uptime: 20032,
  nodeId: "ad24537cb009bedaebae3d247fecee9e14c57fe942e9bb0d",
};
const LOG = {
  created_at_time: "2020-03-06T00:00:01.417263555+00:00",
  scheduled_at_time: "2020-03-06T07:18:35+00:00",
  scheduled_at_date: "84.13117",
  wake_at_time: null,
  finished_at_time: null,
  status: "Pending",
  enclave_leader_id: 1,
};
const HASH = "d9040ca57e513a36ecd3bb54207dfcd10682200929cad6ada46b521417964174";

const apiAnswering = (key: string, res: RawResponse): NodeApi => createNodeApi(scriptedTransport({ [key]: res }));
const statsOf = (body: unknown) => apiAnswering("GET /node/stats", json(200, JSON.stringify(body))).stats();
const logsOf = (body: unknown) => apiAnswering("GET /leaders/logs", json(200, JSON.stringify(body))).leaderLogs();

function errorOf<T>(r: NodeResult<T>): NodeError {
  if (r.ok) throw new Error(`expected an error, got ${JSON.stringify(r.value)}`);
  return r.error;
}
function valueOf<T>(r: NodeResult<T>): T {
  if (!r.ok) throw new Error(`expected a value, got ${JSON.stringify(r.error)}`);
  return r.value;
}

describe("HTTP status mapping", () => {
  const calls: Array<[string, (api: NodeApi) => Promise<NodeResult<unknown>>]> = [
    ["GET /node/stats", (api) => api.stats()],
    ["GET /settings", (api) => api.settings()],
    ["GET /leaders", (api) => api.leaders()],
    ["POST /leaders", (api) => api.addLeader({ genesis: {} })],
    ["DELETE /leaders/1", (api) => api.removeLeader(1)],
    ["GET /leaders/logs", (api) => api.leaderLogs()],
    ["GET /shutdown", (api) => api.shutdown()],
    ["GET /tip", (api) => api.tip()],
  ];

  for (const [key, call] of calls) {
    test(`${key}: 503 is not_ready`, async () => {
      const error = errorOf(await call(apiAnswering(key, text(503, "Full REST context not available yet"))));
      expect(error).toEqual({ kind: "not_ready", status: 503, message: `${key}: HTTP 503 Full REST context not available yet` });
    });
    test(`${key}: v0.8.19's 500 "Unhandled rejection" is not_ready`, async () => {
      const error = errorOf(await call(apiAnswering(key, text(500, "Unhandled rejection: FullContextNotAvailable"))));
      expect(error.kind).toBe("not_ready");
      expect(error).toMatchObject({ status: 500 });
    });
    test(`${key}: another 500 is http`, async () => {
      const error = errorOf(await call(apiAnswering(key, text(500, "Internal Server Error"))));
      expect(error).toEqual({ kind: "http", status: 500, message: `${key}: HTTP 500 Internal Server Error` });
    });
  }

  test("a 404 other than DELETE's is http", async () => {
    expect(errorOf(await apiAnswering("GET /leaders/logs", text(404, "")).leaderLogs())).toEqual({
      kind: "http",
      status: 404,
      message: "GET /leaders/logs: HTTP 404",
    });
  });

  test("DELETE: 200 empty body → true, 404 → false", async () => {
    expect(await apiAnswering("DELETE /leaders/3", text(200, "")).removeLeader(3)).toEqual({ ok: true, value: true });
    expect(await apiAnswering("DELETE /leaders/3", text(404, "Leader with given ID not found")).removeLeader(3)).toEqual({
      ok: true,
      value: false,
    });
  });

  test("a long error body is cut in the message", async () => {
    const error = errorOf(await apiAnswering("GET /settings", text(502, "x".repeat(5000))).settings());
    expect(error.message.length).toBeLessThan(200);
  });
});

describe("transport failures", () => {
  test("an unreachable NodeError from the transport passes through unchanged", async () => {
    const unreachable: NodeError = { kind: "unreachable", reason: "refused", message: "GET /node/stats: ECONNREFUSED" };
    const api = createNodeApi(async () => unreachable);
    expect(await api.stats()).toEqual({ ok: false, error: unreachable });
  });

  test("a transport that throws is unreachable/other, never an exception", async () => {
    const api = createNodeApi(async () => {
      throw new Error("boom");
    });
    expect(await api.leaders()).toEqual({ ok: false, error: { kind: "unreachable", reason: "other", message: "GET /leaders: boom" } });
  });
});

describe("requests", () => {
  test("each call sends the v0.8.x method and path; POST carries the secret as JSON", async () => {
    const transport = scriptedTransport({
      "GET /node/stats": json(200, JSON.stringify(RUNNING)),
      "GET /settings": json(503, ""),
      "GET /leaders": json(200, "[]"),
      "POST /leaders": json(200, "1"),
      "DELETE /leaders/12": text(200, ""),
      "GET /leaders/logs": json(200, "[]"),
      "GET /shutdown": text(200, ""),
      "GET /tip": text(200, HASH),
    });
    const api = createNodeApi(transport);
    const secret = { genesis: { sig_key: "kes", vrf_key: "vrf", node_id: "00".repeat(32) } };
    await api.stats();
    await api.settings();
    await api.leaders();
    await api.addLeader(secret);
    await api.removeLeader(12);
    await api.leaderLogs();
    await api.shutdown();
    await api.tip();
    expect(transport.requests.map((r) => `${r.method} ${r.path}`)).toEqual([
      "GET /node/stats",
      "GET /settings",
      "GET /leaders",
      "POST /leaders",
      "DELETE /leaders/12",
      "GET /leaders/logs",
      "GET /shutdown",
      "GET /tip",
    ]);
    const post = transport.requests[3];
    expect(JSON.parse(post?.body ?? "")).toEqual(secret);
    expect(transport.requests.filter((r) => r.body !== undefined)).toHaveLength(1);
  });

  test("a malformed POST /leaders answer never quotes the secret that was sent", async () => {
    const api = apiAnswering("POST /leaders", json(200, '"weird"'));
    const error = errorOf(await api.addLeader({ genesis: { sig_key: "kes25519-SECRET", vrf_key: "vrf_sk1SECRET", node_id: "ab" } }));
    expect(error).toMatchObject({ kind: "malformed", endpoint: "POST /leaders", field: "$" });
    expect(error.message).not.toContain("SECRET");
  });
});

describe("normalisation of /node/stats", () => {
  test("lastBlockHeight as a string or a number", async () => {
    expect(valueOf(await statsOf({ ...RUNNING, lastBlockHeight: "219845" })).height).toBe(219845);
    expect(valueOf(await statsOf({ ...RUNNING, lastBlockHeight: 219845 })).height).toBe(219845);
    expect(valueOf(await statsOf({ ...RUNNING, lastBlockHeight: "0" })).height).toBe(0);
  });

  test("lastReceivedBlockTime null until the first block arrives", async () => {
    expect(valueOf(await statsOf({ ...RUNNING, lastReceivedBlockTime: null })).lastReceivedBlockTimeMs).toBeNull();
  });

  test("extra fields (v0.8.19 peerConnectedCnt, counters) are tolerated", async () => {
    const stats = valueOf(await statsOf({ ...RUNNING, peerConnectedCnt: 12, blockRecvCnt: 1, somethingNew: { a: 1 } }));
    expect(stats.height).toBe(219845);
    expect(Object.keys(stats).sort()).toEqual(
      ["height", "lastBlockDate", "lastBlockTimeMs", "lastReceivedBlockTimeMs", "nodeId", "state", "uptimeS", "version"].sort(),
    );
  });

  test("every boot state before Running parses with only {state, version}", async () => {
    for (const state of ["StartingRestServer", "PreparingStorage", "PreparingBlock0", "Bootstrapping", "StartingWorkers"]) {
      const stats = valueOf(await statsOf({ state, version: "v" }));
      expect(stats).toMatchObject({ state, height: null, uptimeS: null });
    }
  });
});

describe("malformed bodies name the endpoint and the field", () => {
  const cases: Array<[string, unknown, string]> = [
    ["height not a number", { ...RUNNING, lastBlockHeight: "abc" }, "lastBlockHeight"],
    ["negative height", { ...RUNNING, lastBlockHeight: -1 }, "lastBlockHeight"],
    ["fractional height", { ...RUNNING, lastBlockHeight: "1.5" }, "lastBlockHeight"],
    ["unknown state", { ...RUNNING, state: "Dreaming" }, "state"],
    ["missing version", { state: "Running" }, "version"],
    ["time without offset", { ...RUNNING, lastBlockTime: "2020-03-06T12:37:57" }, "lastBlockTime"],
    ["bad block date", { ...RUNNING, lastBlockDate: "84-13650" }, "lastBlockDate"],
  ];
  for (const [name, body, field] of cases) {
    test(`/node/stats: ${name}`, async () => {
      const error = errorOf(await statsOf(body));
      expect(error).toMatchObject({ kind: "malformed", endpoint: "GET /node/stats", field });
      expect(error.message.startsWith(`GET /node/stats: ${field}: `)).toBe(true);
    });
  }

  test("a body that is not JSON names the whole body ($)", async () => {
    const error = errorOf(await apiAnswering("GET /node/stats", json(200, "<html>oops</html>")).stats());
    expect(error).toMatchObject({ kind: "malformed", endpoint: "GET /node/stats", field: "$" });
    expect(error.message).toContain("not JSON");
  });

  test("leader logs: the field path goes into the array and the status variant", async () => {
    const badChain = { ...LOG, status: { Block: { block: HASH, parent: HASH, chain_length: "x" } } };
    expect(errorOf(await logsOf([LOG, badChain]))).toMatchObject({
      kind: "malformed",
      endpoint: "GET /leaders/logs",
      field: "[1].status.Block.chain_length",
    });
    const badReason = { ...LOG, status: { Rejected: { reason: 42 } } };
    expect(errorOf(await logsOf([badReason]))).toMatchObject({ field: "[0].status.Rejected.reason" });
    // {"Block": "x"} fails the Rejected branch and the Block branch at the same depth: it is judged as a Block
    const flatBlock = { ...LOG, status: { Block: "x" } };
    expect(errorOf(await logsOf([flatBlock]))).toMatchObject({ field: "[0].status.Block" });
    const badTime = { ...LOG, created_at_time: "yesterday" };
    expect(errorOf(await logsOf([badTime]))).toMatchObject({ field: "[0].created_at_time" });
  });

  test("leader logs: an unknown status variant (e.g. the spec's InABlock) is malformed at the status", async () => {
    const inABlock = { ...LOG, status: { InABlock: { block: HASH, parent: HASH, chain_length: 1 } } };
    const error = errorOf(await logsOf([inABlock]));
    expect(error).toMatchObject({ kind: "malformed", field: "[0].status" });
    expect(error.message).toContain("Pending");
  });

  test("settings: zero slot duration is malformed (the epoch clock would divide by zero)", async () => {
    const body = { block0Hash: "ab", block0Time: "2019-12-13T19:13:37+00:00", slotDuration: 0, slotsPerEpoch: 43200, consensusVersion: "genesis" };
    const error = errorOf(await apiAnswering("GET /settings", json(200, JSON.stringify(body))).settings());
    expect(error).toMatchObject({ kind: "malformed", endpoint: "GET /settings", field: "slotDuration" });
  });

  test("leaders: a negative id names its index", async () => {
    expect(errorOf(await apiAnswering("GET /leaders", json(200, "[1,-2]")).leaders())).toMatchObject({ field: "[1]" });
  });

  test("tip: not 64 hex", async () => {
    const error = errorOf(await apiAnswering("GET /tip", text(200, "abc")).tip());
    expect(error).toMatchObject({ kind: "malformed", endpoint: "GET /tip", field: "$" });
  });
});

describe("normalisation of the other endpoints", () => {
  test("leader status variants, Block without parent (before v0.8.14)", async () => {
    const logs = valueOf(
      await logsOf([
        LOG,
        { ...LOG, status: { Rejected: { reason: "Cannot sign the block: This leader 1 is not in the enclave" } } },
        { ...LOG, status: { Block: { block: HASH.toUpperCase(), chain_length: 220101 } } },
      ]),
    );
    expect(logs.map((l) => l.status)).toEqual([
      { kind: "pending" },
      { kind: "rejected", reason: "Cannot sign the block: This leader 1 is not in the enclave" },
      { kind: "block", block: HASH, parent: null, chainLength: 220101 },
    ]);
  });

  test("leader logs: wake/finish absent or null both mean null", async () => {
    const { wake_at_time: _w, finished_at_time: _f, ...withoutTimes } = LOG;
    const [entry] = valueOf(await logsOf([withoutTimes]));
    expect(entry).toMatchObject({ wakeAtMs: null, finishedAtMs: null });
  });

  test("settings: currSlotStartTime null or absent → null; seconds → ms", async () => {
    const body = { block0Hash: "AB", block0Time: "2019-12-13T19:13:37+00:00", slotDuration: 2, slotsPerEpoch: 43200, consensusVersion: "bft" };
    const withNull = valueOf(await apiAnswering("GET /settings", json(200, JSON.stringify({ ...body, currSlotStartTime: null }))).settings());
    const absent = valueOf(await apiAnswering("GET /settings", json(200, JSON.stringify(body))).settings());
    expect(withNull).toEqual(absent);
    expect(absent).toEqual({
      block0Hash: "ab",
      block0TimeMs: Date.UTC(2019, 11, 13, 19, 13, 37),
      slotDurationMs: 2000,
      slotsPerEpoch: 43200,
      consensusVersion: "bft",
      currSlotStartTimeMs: null,
    });
  });

  test("tip: surrounding whitespace trimmed, hex lower-cased", async () => {
    expect(await apiAnswering("GET /tip", text(200, `${HASH.toUpperCase()}\n`)).tip()).toEqual({ ok: true, value: HASH });
  });

  test("POST /leaders: a bare integer, with or without whitespace", async () => {
    expect(await apiAnswering("POST /leaders", json(200, " 3\n")).addLeader({})).toEqual({ ok: true, value: 3 });
  });
});

test("fieldPath formats zod paths", () => {
  expect(fieldPath([])).toBe("$");
  expect(fieldPath(["lastBlockHeight"])).toBe("lastBlockHeight");
  expect(fieldPath([0, "status", "Block", "chain_length"])).toBe("[0].status.Block.chain_length");
  expect(fieldPath(["a", 2, "b"])).toBe("a[2].b");
});
