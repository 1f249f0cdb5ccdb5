// The HTTP transport against real sockets on 127.0.0.1: every way a node can fail is a distinct
// typed answer, and no call outlives its deadline.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { Server, TCPSocketListener } from "bun";
import { createNodeApi, DEFAULT_REST_TIMEOUT_MS, httpNodeApi, httpTransport } from "../../src/node/client.ts";
import { classifyFetchError } from "../../src/node/http.ts";

const TIMEOUT_MS = 300;
/** The brief's bound: a call returns within its deadline plus scheduling slack */
const SLACK_MS = 200;
const HASH = "8d94ecfcc9a566f492e6335858db645691f628b012bed4ac2b1338b5690355a7";

let server: Server<undefined>;
let base: string;
/** Client port of every request per path, to observe connection reuse */
const clientPorts: number[] = [];
const received: Array<{ method: string; path: string; contentType: string | null; body: string }> = [];

beforeAll(() => {
  server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    async fetch(req, srv) {
      const path = new URL(req.url).pathname.replace(/^\/api\/v0/, "");
      clientPorts.push(srv.requestIP(req)?.port ?? -1);
      received.push({ method: req.method, path, contentType: req.headers.get("content-type"), body: await req.text() });
      switch (`${req.method} ${path}`) {
        case "GET /node/stats":
          return Response.json({ state: "Running", version: "jormungandr 0.8.14-9ca427ef", lastBlockHeight: "219845", uptime: 3 });
        case "GET /settings":
          return new Response("Full REST context not available yet", { status: 503 });
        case "GET /leaders":
          return Response.json([1]);
        case "POST /leaders":
          return new Response("1", { headers: { "content-type": "application/json" } });
        case "DELETE /leaders/1":
          return new Response("");
        case "DELETE /leaders/9":
          return new Response("Leader with given ID not found", { status: 404 });
        case "GET /leaders/logs":
          return Response.json([{ created_at_time: "2020-03-06T00:00:01+00:00", status: "Pending" }]);
        case "GET /tip":
          return new Response(HASH, { headers: { "content-type": "text/plain" } });
        case "GET /shutdown":
          return new Response("");
        case "GET /hang":
          return new Promise<Response>(() => {});
        case "GET /stall":
          // Headers and the first byte go out, then nothing: what a process SIGSTOPped mid-answer does
          return new Response(
            new ReadableStream({
              start(controller) {
                controller.enqueue(new TextEncoder().encode("["));
              },
            }),
            { headers: { "content-type": "application/json" } },
          );
        default:
          return new Response("not found", { status: 404 });
      }
    },
  });
  base = `http://127.0.0.1:${server.port}/api/v0`;
});

afterAll(() => {
  server.stop(true);
});

describe("answers", () => {
  test("a full round of every endpoint over HTTP", async () => {
    const api = httpNodeApi(base, { timeoutMs: 2000 });
    expect(await api.stats()).toMatchObject({ ok: true, value: { state: "Running", height: 219845, uptimeS: 3 } });
    expect(await api.leaders()).toEqual({ ok: true, value: [1] });
    expect(await api.addLeader({ genesis: { node_id: "ab" } })).toEqual({ ok: true, value: 1 });
    expect(await api.removeLeader(1)).toEqual({ ok: true, value: true });
    expect(await api.tip()).toEqual({ ok: true, value: HASH });
    expect(await api.shutdown()).toEqual({ ok: true, value: undefined });
  });

  test("POST sends the secret as JSON with Content-Type application/json; GET sends no body", async () => {
    received.length = 0;
    const api = httpNodeApi(base, { timeoutMs: 2000 });
    await api.leaders();
    await api.addLeader({ genesis: { sig_key: "k", vrf_key: "v", node_id: "ab" } });
    expect(received).toEqual([
      { method: "GET", path: "/leaders", contentType: null, body: "" },
      {
        method: "POST",
        path: "/leaders",
        contentType: "application/json",
        body: JSON.stringify({ genesis: { sig_key: "k", vrf_key: "v", node_id: "ab" } }),
      },
    ]);
  });

  test("a trailing slash on the base URL is harmless", async () => {
    expect(await httpNodeApi(`${base}/`, { timeoutMs: 2000 }).leaders()).toEqual({ ok: true, value: [1] });
  });

  test("(a) 503 'Full REST context not available yet' → not_ready", async () => {
    expect(await httpNodeApi(base, { timeoutMs: 2000 }).settings()).toEqual({
      ok: false,
      error: { kind: "not_ready", status: 503, message: "GET /settings: HTTP 503 Full REST context not available yet" },
    });
  });

  test("(d) a malformed body names the endpoint and the field", async () => {
    const result = await httpNodeApi(base, { timeoutMs: 2000 }).leaderLogs();
    expect(result).toMatchObject({ ok: false, error: { kind: "malformed", endpoint: "GET /leaders/logs", field: "[0].scheduled_at_time" } });
  });

  test("(e) DELETE of an unknown id: 404 → ok(false)", async () => {
    expect(await httpNodeApi(base, { timeoutMs: 2000 }).removeLeader(9)).toEqual({ ok: true, value: false });
  });
});

describe("deadlines", () => {
  test("the default deadline is well under one 2 s slot", () => {
    expect(DEFAULT_REST_TIMEOUT_MS).toBe(500);
  });

  test("(b) a server that accepts the request and never answers → unreachable/timeout within the deadline", async () => {
    const transport = httpTransport(base, { timeoutMs: TIMEOUT_MS });
    const started = performance.now();
    const result = await transport({ method: "GET", path: "/hang" });
    const elapsed = performance.now() - started;
    expect(result).toEqual({ kind: "unreachable", reason: "timeout", message: `GET /hang: no answer within ${TIMEOUT_MS} ms` });
    expect(elapsed).toBeGreaterThanOrEqual(TIMEOUT_MS - 5);
    expect(elapsed).toBeLessThan(TIMEOUT_MS + SLACK_MS);
  });

  test("(b) headers sent, body stalled → timeout within the deadline", async () => {
    const transport = httpTransport(base, { timeoutMs: TIMEOUT_MS });
    const started = performance.now();
    const result = await transport({ method: "GET", path: "/stall" });
    expect(result).toMatchObject({ kind: "unreachable", reason: "timeout" });
    expect(performance.now() - started).toBeLessThan(TIMEOUT_MS + SLACK_MS);
  });

  test("(b) a TCP peer that accepts and never speaks HTTP → timeout within the deadline", async () => {
    const listener: TCPSocketListener<undefined> = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {}, open() {} } });
    try {
      const api = httpNodeApi(`http://127.0.0.1:${listener.port}/api/v0`, { timeoutMs: TIMEOUT_MS });
      const started = performance.now();
      const result = await api.stats();
      expect(result).toMatchObject({ ok: false, error: { kind: "unreachable", reason: "timeout" } });
      expect(performance.now() - started).toBeLessThan(TIMEOUT_MS + SLACK_MS);
    } finally {
      listener.stop(true);
    }
  });

  test("the deadline holds even when the injected fetch ignores the abort signal", async () => {
    const transport = httpTransport(base, { timeoutMs: TIMEOUT_MS, fetch: (() => new Promise<Response>(() => {})) as unknown as typeof fetch });
    const started = performance.now();
    expect(await transport({ method: "GET", path: "/leaders" })).toMatchObject({ kind: "unreachable", reason: "timeout" });
    expect(performance.now() - started).toBeLessThan(TIMEOUT_MS + SLACK_MS);
  });

  test("the deadline is cancelled on expiry: the server sees the request aborted", async () => {
    let aborted!: () => void;
    const sawAbort = new Promise<void>((resolve) => (aborted = resolve));
    const hangServer = Bun.serve({
      hostname: "127.0.0.1",
      port: 0,
      fetch(req) {
        req.signal.addEventListener("abort", () => aborted());
        return new Promise<Response>(() => {});
      },
    });
    try {
      const transport = httpTransport(`http://127.0.0.1:${hangServer.port}/api/v0`, { timeoutMs: 100 });
      expect(await transport({ method: "GET", path: "/node/stats" })).toMatchObject({ reason: "timeout" });
      const outcome = await Promise.race([sawAbort.then(() => "aborted"), Bun.sleep(2000).then(() => "still open")]);
      expect(outcome).toBe("aborted");
    } finally {
      hangServer.stop(true);
    }
  });

  test("a timed-out call does not poison the next one", async () => {
    const transport = httpTransport(base, { timeoutMs: TIMEOUT_MS });
    await transport({ method: "GET", path: "/hang" });
    const api = createNodeApi(transport);
    expect(await api.leaders()).toEqual({ ok: true, value: [1] });
  });
});

describe("connection failures", () => {
  test("(c) a closed port → unreachable/refused, immediately", async () => {
    const closed = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => new Response("") });
    const port = closed.port;
    closed.stop(true);
    const started = performance.now();
    const result = await httpNodeApi(`http://127.0.0.1:${port}/api/v0`, { timeoutMs: 2000 }).stats();
    expect(result).toMatchObject({ ok: false, error: { kind: "unreachable", reason: "refused" } });
    expect(performance.now() - started).toBeLessThan(1000);
  });

  test("a peer that closes the connection without answering → unreachable/reset", async () => {
    const listener = Bun.listen({
      hostname: "127.0.0.1",
      port: 0,
      socket: {
        data(socket) {
          socket.end();
        },
      },
    });
    try {
      const result = await httpNodeApi(`http://127.0.0.1:${listener.port}/api/v0`, { timeoutMs: 2000 }).stats();
      expect(result).toMatchObject({ ok: false, error: { kind: "unreachable", reason: "reset" } });
    } finally {
      listener.stop(true);
    }
  });

  test("classifyFetchError sorts error codes", () => {
    expect(classifyFetchError({ code: "ECONNREFUSED" }, false)).toBe("refused");
    expect(classifyFetchError({ code: "ConnectionRefused" }, false)).toBe("refused");
    expect(classifyFetchError({ code: "ECONNRESET" }, false)).toBe("reset");
    expect(classifyFetchError({ name: "TimeoutError" }, false)).toBe("timeout");
    expect(classifyFetchError({ code: "ECONNRESET" }, true)).toBe("timeout");
    expect(classifyFetchError(new Error("weird"), false)).toBe("other");
    expect(classifyFetchError(null, false)).toBe("other");
  });

  test("an invalid base URL fails at construction, not on every call", () => {
    expect(() => httpTransport("not a url")).toThrow();
  });
});

describe("no connection reuse", () => {
  test("every call opens its own connection (the server sees a new client port each time)", async () => {
    const api = httpNodeApi(base, { timeoutMs: 2000 });
    clientPorts.length = 0;
    for (let i = 0; i < 5; i++) {
      expect((await api.leaders()).ok).toBe(true);
    }
    expect(clientPorts).toHaveLength(5);
    expect(new Set(clientPorts).size).toBe(5);
  });

  test("a process that held the port before the runner bound it gets nothing through an old connection", async () => {
    // The impostor answers while the runner restarts, then lets go of the port (keeping its open
    // connections, as stop() without force does); the runner binds it. With kept-alive connections
    // the next answers (and the key's POST) would still travel to the impostor.
    // A raw listener, so that its open connections outlive the listening socket for sure.
    const answer = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\nconnection: keep-alive\r\n\r\n[]";
    const open: { end(): void }[] = [];
    const impostor = Bun.listen({
      hostname: "127.0.0.1",
      port: 0,
      socket: { open: (sock) => void open.push(sock), data: (sock) => void sock.write(answer) },
    });
    const port = impostor.port;
    const api = httpNodeApi(`http://127.0.0.1:${port}`, { timeoutMs: 2000 });
    let runner: Server<undefined> | null = null;
    try {
      expect(await api.leaders()).toEqual({ ok: true, value: [] });
      impostor.stop(false);
      runner = Bun.serve({ hostname: "127.0.0.1", port, fetch: () => Response.json([1]) });
      expect(await api.leaders()).toEqual({ ok: true, value: [1] });
    } finally {
      for (const sock of open) sock.end();
      impostor.stop(true);
      void runner?.stop(true);
    }
  });
});
