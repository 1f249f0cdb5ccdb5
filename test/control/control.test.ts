// The control channel over a real Unix socket in a temp dir: the daemon's side (startControl, the
// server, the inbox) and the CLI's (askDaemon), including every way the other end can be absent,
// stale, broken or silent.
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, statSync, existsSync, writeFileSync } from "node:fs";
import { createConnection, createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { z } from "zod";
import { reportAlert } from "../../src/alerts/events.ts";
import { askDaemon } from "../../src/control/client.ts";
import { HISTORY_KINDS } from "../../src/history/events.ts";
import { startControl } from "../../src/control/index.ts";
import { controlSocketPath, stateDir, stateDirsToRead } from "../../src/control/paths.ts";
import { daemonHeadline, daemonViewSchema, pingResultSchema, type ControlAnswer, type ControlRequest } from "../../src/control/protocol.ts";
import { CONTROL_SOCKET_MODE, ControlInbox, startControlServer } from "../../src/control/server.ts";
import { emptyMemory } from "../../src/master/decide.ts";
import type { TickReport } from "../../src/master/loop.ts";
import { observation, runner } from "../master/fixtures.ts";

const dir = mkdtempSync(join(tmpdir(), "jm-control-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
const sockPath = () => join(dir, `s${n++}.sock`);
const logs: string[] = [];
const log = { info: (m: string) => logs.push(`info ${m}`), warn: (m: string) => logs.push(`warn ${m}`), error: (m: string) => logs.push(`error ${m}`), debug: (m: string) => logs.push(`debug ${m}`) };

function report(atMs: number, signer: number | null, coHolders: number[] | null = null): TickReport {
  const runners = [0, 1, 2].map((id) => runner(id, { kind: id === signer ? "holder" : "standby" }));
  const views = [0, 1, 2].map((id) => ({ id, cap: id === signer ? ("holder" as const) : ("keyless" as const), pid: 100 + id, running: true, responsive: true, nodeState: "Running", height: 7, leaderIds: id === signer ? [1] : [], busy: false, unitActive: true, frozen: false }));
  const memory = { ...emptyMemory(), signer, boundary: coHolders ? { epoch: 5, coHolders } : null, events: [1201, 1250] };
  return { startedMs: atMs, durationMs: 12, observation: observation(atMs, runners), views, plan: { fences: [], promote: null, other: [], wakeAtMs: atMs + 500, notes: ["#2 is kept as signer while unwell"] }, outcomes: [], memory };
}

/** Raw request text in, raw answer line out (for what the typed client cannot send). */
function rawAsk(path: string, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let buf = "";
    const s = createConnection({ path }, () => s.end(text));
    s.setEncoding("utf8");
    s.on("data", (c: string) => (buf += c));
    s.on("end", () => resolve(buf));
    s.on("error", reject);
  });
}

describe("control channel", () => {
  test("round trip: ping, then status before and after a tick (signer, hand-out, notes, events)", async () => {
    const path = sockPath();
    const control = await startControl({ path, version: "9.9.9", log, pid: 4242, now: () => 1_000 });
    expect(control.path).toBe(path);
    const ping = await askDaemon(path, { cmd: "ping" }, pingResultSchema);
    expect(ping).toEqual({ kind: "answer", result: { pid: 4242, version: "9.9.9", startedMs: 1_000 } });
    const before = await askDaemon(path, { cmd: "status" }, daemonViewSchema);
    expect(before.kind === "answer" && before.result.tickAtMs).toBeNull();
    await control.onTick(report(50_000, 1, [0, 2]));
    const after = await askDaemon(path, { cmd: "status" }, daemonViewSchema);
    if (after.kind !== "answer") throw new Error(JSON.stringify(after));
    expect(after.result).toMatchObject({ signer: 1, ticks: 1, tickAtMs: 50_000, boundary: { epoch: 5, coHolders: [0, 2], stripped: false }, events: [1201, 1250] });
    expect(after.result.views.map((v) => [v.id, v.cap])).toEqual([
      [0, "keyless"],
      [1, "holder"],
      [2, "keyless"],
    ]);
    expect(daemonHeadline(after.result, 51_000)).toBe("daemon (pid 4242): signer #1; hand-out in progress (#0, #2 computing epoch 5's schedule); #2 is kept as signer while unwell");
    await control.close();
    expect(existsSync(path)).toBe(false);
  });

  test("the socket is mode 0660, whatever the umask", async () => {
    const path = sockPath();
    const old = process.umask(0o077);
    try {
      const control = await startControl({ path, version: "t", log });
      expect(statSync(path).mode & 0o777).toBe(CONTROL_SOCKET_MODE);
      expect(CONTROL_SOCKET_MODE).toBe(0o660);
      await control.close();
    } finally {
      process.umask(old);
    }
  });

  test("a stale socket file from a daemon killed with SIGKILL is replaced; the client calls it no daemon until then", async () => {
    const path = sockPath();
    const child = Bun.spawn(["bun", "-e", `require("node:net").createServer(()=>{}).listen(${JSON.stringify(path)}, () => console.log("up"))`], { stdout: "pipe" });
    const reader = child.stdout.getReader();
    await reader.read(); // "up"
    child.kill("SIGKILL");
    await child.exited;
    expect(statSync(path).isSocket()).toBe(true);
    const stale = await askDaemon(path, { cmd: "ping" }, pingResultSchema);
    expect(stale).toEqual({ kind: "no-daemon", reason: `no daemon answers on ${path}` });
    const control = await startControl({ path, version: "t", log });
    expect(control.path).toBe(path);
    expect((await askDaemon(path, { cmd: "ping" }, pingResultSchema)).kind).toBe("answer");
    await control.close();
  });

  test("a live daemon's socket is not taken over; a regular file is not removed", async () => {
    const path = sockPath();
    const first = await startControl({ path, version: "first", log });
    logs.length = 0;
    const second = await startControl({ path, version: "second", log });
    expect(second.path).toBeNull();
    expect(logs.some((l) => l.startsWith("error") && l.includes("another process answers"))).toBe(true);
    const ping = await askDaemon(path, { cmd: "ping" }, pingResultSchema);
    expect(ping.kind === "answer" && ping.result.version).toBe("first");
    await second.close();
    expect(existsSync(path)).toBe(true); // the second did not remove the first's socket
    await first.close();
    const file = sockPath();
    writeFileSync(file, "not a socket");
    await expect(startControlServer(file, () => ({ ok: true, result: null }), log)).rejects.toThrow("is not a socket");
    expect(existsSync(file)).toBe(true);
  });

  test("no daemon: the client says so instead of throwing", async () => {
    const r = await askDaemon(join(dir, "nothing-here.sock"), { cmd: "status" }, daemonViewSchema);
    expect(r.kind).toBe("no-daemon");
  });

  test("a malformed request gets an error answer, and the server goes on answering", async () => {
    const path = sockPath();
    const control = await startControl({ path, version: "t", log });
    expect(JSON.parse(await rawAsk(path, "this is not json\n"))).toEqual({ ok: false, error: "malformed request: not JSON" });
    const unknown = JSON.parse(await rawAsk(path, `${JSON.stringify({ cmd: "format-disk" })}\n`)) as ControlAnswer;
    expect(unknown.ok).toBe(false);
    expect(!unknown.ok && unknown.error).toContain('cmd "format-disk"');
    // Extra fields are refused too (strict): a newer client's option is not silently ignored.
    expect((JSON.parse(await rawAsk(path, `${JSON.stringify({ cmd: "ping", force: true })}\n`)) as ControlAnswer).ok).toBe(false);
    // Without a newline: the half-close ends the request.
    expect((JSON.parse(await rawAsk(path, JSON.stringify({ cmd: "ping" }))) as ControlAnswer).ok).toBe(true);
    expect(JSON.parse(await rawAsk(path, `${"x".repeat(70 * 1024)}`))).toEqual({ ok: false, error: "request longer than 65536 bytes" });
    expect((await askDaemon(path, { cmd: "ping" }, pingResultSchema)).kind).toBe("answer");
    await control.close();
  });

  test("the client's deadline: a server that accepts and never answers", async () => {
    const path = sockPath();
    const silent = createServer(() => {});
    await new Promise<void>((r) => silent.listen(path, () => r()));
    const t0 = Date.now();
    const r = await askDaemon(path, { cmd: "status" }, daemonViewSchema, { timeoutMs: 300 });
    const tookMs = Date.now() - t0;
    expect(r).toEqual({ kind: "failed", error: `the daemon did not answer on ${path} within 0.3 s` });
    expect(tookMs).toBeGreaterThanOrEqual(290);
    expect(tookMs).toBeLessThan(2_000);
    silent.close();
  });

  test("an answer of the wrong shape is a failure, not a result", async () => {
    const path = sockPath();
    const server = await startControlServer(path, () => ({ ok: true, result: { signer: "one" } }), log);
    const r = await askDaemon(path, { cmd: "status" }, daemonViewSchema);
    expect(r).toEqual({ kind: "failed", error: "the daemon's status answer has an unknown shape (another version?)" });
    await server.close();
  });

  test("a handler that enqueues is answered only when the loop drains the inbox", async () => {
    const path = sockPath();
    const inbox = new ControlInbox<ControlRequest, ControlAnswer>();
    const server = await startControlServer(path, (req) => inbox.enqueue(req, 5_000), log);
    let answered = false;
    const pending = askDaemon(path, { cmd: "ping" }, z.string(), { timeoutMs: 3_000 }).then((r) => ((answered = true), r));
    for (let i = 0; i < 100 && inbox.size === 0; i++) await Bun.sleep(10);
    expect(inbox.size).toBe(1);
    await Bun.sleep(50);
    expect(answered).toBe(false);
    expect(await inbox.drain((req) => ({ ok: true, result: `applied ${req.cmd} after the tick` }))).toBe(1);
    expect(await pending).toEqual({ kind: "answer", result: "applied ping after the tick" });
    await server.close();
  });

  test("the inbox: a request the loop does not take in time fails; closing fails the rest", async () => {
    const inbox = new ControlInbox<string, string>();
    await expect(inbox.enqueue("slow", 50)).rejects.toThrow("did not take the request within 0.05 s");
    expect(inbox.size).toBe(0);
    const waiting = inbox.enqueue("a", 5_000);
    inbox.close("the daemon is stopping");
    await expect(waiting).rejects.toThrow("the daemon is stopping");
    await expect(inbox.enqueue("b", 5_000)).rejects.toThrow("the daemon is stopping");
  });
});

describe("paths", () => {
  test("socket: /run/jorm-master in the system scope, $XDG_RUNTIME_DIR in the user scope, beside an explicit lock", () => {
    expect(controlSocketPath("system", {})).toBe("/run/jorm-master/control.sock");
    expect(controlSocketPath("user", { XDG_RUNTIME_DIR: "/run/user/1000" })).toBe("/run/user/1000/jorm-master/control.sock");
    expect(controlSocketPath("system", { JORM_MASTER_LOCK: "/tmp/x/lock-1" })).toBe("/tmp/x/lock-1.control.sock");
    expect(controlSocketPath("system", { JORM_MASTER_CONTROL_SOCKET: "/tmp/c.sock", JORM_MASTER_LOCK: "/tmp/x/lock-1" })).toBe("/tmp/c.sock");
  });
  test("state dir: the unit's StateDirectory, the installer's layout outside it", () => {
    expect(stateDir("system", {})).toBe("/var/lib/jorm-master");
    expect(stateDir("system", { STATE_DIRECTORY: "/var/lib/jorm-master" })).toBe("/var/lib/jorm-master");
    expect(stateDir("user", { HOME: "/home/op" })).toBe("/home/op/.local/state/jorm-master");
    expect(stateDir("user", { HOME: "/home/op", XDG_STATE_HOME: "/st" })).toBe("/st/jorm-master");
    expect(stateDir("user", { JORM_MASTER_STATE_DIR: "/x", STATE_DIRECTORY: "/y" })).toBe("/x");
    // Outside the unit a reader looks where either systemd generation puts a user unit's state.
    expect(stateDirsToRead("user", { HOME: "/home/op" })).toEqual(["/home/op/.local/state/jorm-master", "/home/op/.config/jorm-master"]);
    expect(stateDirsToRead("system", {})).toEqual(["/var/lib/jorm-master"]);
    expect(stateDirsToRead("user", { HOME: "/home/op", STATE_DIRECTORY: "/s" })).toEqual(["/s"]);
  });
});

test("a socket path no socket address can hold is a failure answer, not a throw (status must not turn UNKNOWN)", async () => {
  const r = await askDaemon(join(dir, "x".repeat(200), "control.sock"), { cmd: "ping" }, pingResultSchema, { timeoutMs: 500 });
  expect(r.kind === "failed" || r.kind === "no-daemon").toBe(true);
});

describe("reports from commands (a rolling upgrade's start and result)", () => {
  test("recorded at once by the daemon's onReport and answered; refused by a daemon that records none", async () => {
    const path = sockPath();
    const seen: unknown[] = [];
    const control = await startControl({ path, version: "t", log, onReport: (r) => seen.push(r) });
    try {
      const req = { cmd: "report", kind: "upgrade", ok: false, title: "upgrade stopped", text: "#1 not healthy within 960 s: rolled back" } as const;
      expect((await askDaemon(path, req, z.unknown())).kind).toBe("answer");
      expect(seen).toEqual([req]);
    } finally {
      await control.close();
    }
    const silent = await startControl({ path, version: "t", log });
    try {
      const r = await askDaemon(path, { cmd: "report", kind: "upgrade", ok: true, title: "upgrade done", text: "" }, z.unknown());
      expect(r).toEqual({ kind: "refused", error: "report: not recorded by this daemon" });
    } finally {
      await silent.close();
    }
  });

  test("a failed upgrade is a critical alert, a finished one news; the event log takes the kind", () => {
    expect(reportAlert({ kind: "upgrade", ok: false, title: "upgrade stopped", text: "rolled back" }, 5)).toEqual({ kind: "upgrade", severity: "critical", key: "upgrade:5", title: "upgrade stopped", text: "rolled back", atMs: 5 });
    expect(reportAlert({ kind: "upgrade", ok: true, title: "upgrade done", text: "" }, 6).severity).toBe("info");
    expect(HISTORY_KINDS).toContain("upgrade");
  });
});
