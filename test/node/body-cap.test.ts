// Every REST body is capped while it streams, inside the call's deadline: an endless /leaders/logs
// took the daemon to 172 MB, a 200k-entry one blocked the loop 2.5 s after the deadline (issue 9,
// point 7). Real sockets on 127.0.0.1.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { Server } from "bun";
import { createNodeApi, DEFAULT_MAX_BODY_BYTES, httpNodeApi, MAX_LEADER_LOGS_BYTES } from "../../src/node/client.ts";
import type { RawResponse } from "../../src/node/types.ts";

const TIMEOUT_MS = 1_000;
/** Scheduling slack on a shared 2-core machine */
const SLACK_MS = 300;
const CHUNK = new TextEncoder().encode(`${" ".repeat(64 * 1024 - 1)}\n`);
const ENTRY = {
  created_at_time: "2020-03-06T00:00:01.417263901+00:00",
  scheduled_at_time: "2020-03-06T09:02:11+00:00",
  scheduled_at_date: "84.16225",
  wake_at_time: "2020-03-06T09:02:11.000912311+00:00",
  finished_at_time: "2020-03-06T09:02:11.048113002+00:00",
  enclave_leader_id: 1,
  status: { Block: { block: "d9040ca57e513a36ecd3bb54207dfcd10682200929cad6ada46b521417964174", parent: "cc72d4ca957b03d7c795596b7fd7b1ff09c649c3e2877c508c0466abc8604832", chain_length: 220101 } },
};
/** A big pool's log: a few hundred entries per epoch over two epochs, with margin: the node's default LRU capacity twice */
const BIG_REAL_LOG_ENTRIES = 2 * 1024;
const HUGE_LOG_ENTRIES = 200_000;

let server: Server<undefined>;
let base: string;
/** Bytes the endless stream has handed to the socket so far */
let endlessBytes = 0;
let endlessCancelled = false;

function entriesStream(count: number): ReadableStream<Uint8Array> {
  const encoder = new TextEncoder();
  let sent = 0;
  return new ReadableStream({
    pull(controller) {
      if (sent === 0) controller.enqueue(encoder.encode("["));
      const batch = Math.min(1_000, count - sent);
      const parts = Array.from({ length: batch }, (_, i) => (sent + i === 0 ? "" : ",") + JSON.stringify(ENTRY));
      controller.enqueue(encoder.encode(parts.join("")));
      sent += batch;
      if (sent >= count) {
        controller.enqueue(encoder.encode("]"));
        controller.close();
      }
    },
  });
}

beforeAll(() => {
  server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    fetch(req) {
      const path = new URL(req.url).pathname.replace("/api/v0", "");
      const json = { "content-type": "application/json" };
      switch (path) {
        case "/endless/leaders/logs":
          endlessBytes = 0;
          endlessCancelled = false;
          return new Response(
            new ReadableStream({
              pull(controller) {
                endlessBytes += CHUNK.byteLength;
                controller.enqueue(CHUNK);
              },
              cancel() {
                endlessCancelled = true;
              },
            }),
            { headers: json },
          );
        case "/huge-declared/leaders/logs":
          // Content-Length says it all: refused before a byte of the body is read
          return new Response(JSON.stringify(Array(HUGE_LOG_ENTRIES).fill(ENTRY)), { headers: json });
        case "/huge-chunked/leaders/logs":
          return new Response(entriesStream(HUGE_LOG_ENTRIES), { headers: json });
        case "/big-real/leaders/logs":
          return new Response(entriesStream(BIG_REAL_LOG_ENTRIES), { headers: json });
        case "/big-stats/node/stats":
          return new Response(JSON.stringify({ state: "Running", padding: "x".repeat(DEFAULT_MAX_BODY_BYTES) }), { headers: json });
        default:
          return new Response("not found", { status: 404 });
      }
    },
  });
  base = `http://127.0.0.1:${server.port}`;
});

afterAll(() => {
  server.stop(true);
});

async function timed<T>(f: () => Promise<T>): Promise<{ value: T; ms: number }> {
  const t0 = performance.now();
  const value = await f();
  return { value, ms: performance.now() - t0 };
}

describe("body caps", () => {
  test("an endless /leaders/logs: a clean error long before the deadline, memory bounded, the stream cut off", async () => {
    Bun.gc(true);
    const rssBefore = process.memoryUsage().rss;
    const api = httpNodeApi(`${base}/endless/api/v0`, { timeoutMs: TIMEOUT_MS });
    const { value, ms } = await timed(() => api.leaderLogs());
    const rssGrowth = process.memoryUsage().rss - rssBefore;
    expect(value).toMatchObject({ ok: false, error: { kind: "malformed", field: "$" } });
    if (!value.ok) expect(value.error.message).toBe("GET /leaders/logs: answer body larger than 2 MiB, refused unread");
    expect(ms).toBeLessThan(TIMEOUT_MS);
    // The cap, socket buffers and the runtime's own growth; the uncapped read took 172 MB in 500 ms
    expect(rssGrowth).toBeLessThan(48 * 1024 * 1024);
    // The server stops producing: the connection was dropped, not drained
    await Bun.sleep(200);
    const sentAfter = endlessBytes;
    await Bun.sleep(200);
    expect(endlessBytes).toBe(sentAfter);
    expect(endlessBytes).toBeLessThan(64 * MAX_LEADER_LOGS_BYTES);
  });

  test("a 200k-entry log with Content-Length (92 MB): refused at the headers", async () => {
    const api = httpNodeApi(`${base}/huge-declared/api/v0`, { timeoutMs: TIMEOUT_MS });
    const { value, ms } = await timed(() => api.leaderLogs());
    expect(value).toMatchObject({ ok: false, error: { kind: "malformed", message: "GET /leaders/logs: answer body larger than 2 MiB, refused unread" } });
    expect(ms).toBeLessThan(TIMEOUT_MS + SLACK_MS);
  });

  test("a 200k-entry log sent chunked (no length): cut off at the cap, call and parse inside the deadline", async () => {
    const api = httpNodeApi(`${base}/huge-chunked/api/v0`, { timeoutMs: TIMEOUT_MS });
    const { value, ms } = await timed(() => api.leaderLogs());
    expect(value).toMatchObject({ ok: false, error: { kind: "malformed", field: "$" } });
    expect(ms).toBeLessThan(TIMEOUT_MS + SLACK_MS);
  });

  test(`a big pool's real log (${BIG_REAL_LOG_ENTRIES} entries, about 1 MB) is under the cap and parsed within the deadline`, async () => {
    expect(BIG_REAL_LOG_ENTRIES * JSON.stringify(ENTRY).length).toBeLessThan(MAX_LEADER_LOGS_BYTES / 2);
    const api = httpNodeApi(`${base}/big-real/api/v0`, { timeoutMs: TIMEOUT_MS });
    const { value, ms } = await timed(() => api.leaderLogs());
    expect(value.ok).toBe(true);
    if (value.ok) expect(value.value).toHaveLength(BIG_REAL_LOG_ENTRIES);
    expect(ms).toBeLessThan(TIMEOUT_MS);
  });

  test("every other endpoint has the small default cap (its answers are under 1 KiB)", async () => {
    const api = httpNodeApi(`${base}/big-stats/api/v0`, { timeoutMs: TIMEOUT_MS });
    const value = await api.stats();
    expect(value).toMatchObject({ ok: false, error: { kind: "malformed", message: "GET /node/stats: answer body larger than 64 KiB, refused unread" } });
  });
});

describe("the deadline covers the parse", () => {
  const logsBody: RawResponse = { status: 200, body: JSON.stringify([ENTRY]), contentType: "application/json" };

  test("an answer read in time but parsed after the deadline is a timeout, not fresh evidence", async () => {
    let clock = 0;
    // The transport answers at 40 ms; reading the clock again (after the parse) finds 120 ms
    const api = createNodeApi(
      async () => {
        clock = 40;
        return logsBody;
      },
      { deadlineMs: 100, now: () => (clock === 40 ? (clock = 120) : clock) },
    );
    expect(await api.leaderLogs()).toMatchObject({
      ok: false,
      error: { kind: "unreachable", reason: "timeout", message: "GET /leaders/logs: answer not read and parsed within 100 ms" },
    });
  });

  test("within the deadline the answer counts", async () => {
    const api = createNodeApi(async () => logsBody, { deadlineMs: 100, now: () => 0 });
    expect((await api.leaderLogs()).ok).toBe(true);
  });
});
