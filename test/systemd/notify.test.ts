import { afterAll, describe, expect, test } from "bun:test";
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  createFfiTransport,
  createNotifier,
  createSystemdNotifyTransport,
  encodeSockaddrUn,
  watchdogUsecFrom,
  type NotifyTransport,
} from "../../src/systemd/notify.ts";
import { bunSpawner } from "../../src/systemd/systemctl.ts";
import { ensureUserManager, requireUserManager } from "../e2e/user-manager.ts";

function fakeTransport(): NotifyTransport & { sent: string[] } {
  const sent: string[] = [];
  return { kind: "custom", lastError: null, sent, send: (m) => (sent.push(m), true), close() {} };
}

describe("encodeSockaddrUn", () => {
  test("a path socket: AF_UNIX, the path, a terminating NUL", () => {
    const { addr, length } = encodeSockaddrUn("/run/x");
    expect([...addr.slice(0, 2)]).toEqual([1, 0]);
    expect(new TextDecoder().decode(addr.slice(2, 8))).toBe("/run/x");
    expect(addr[8]).toBe(0);
    expect(length).toBe(2 + 6 + 1);
  });

  test("an abstract socket: '@' becomes a leading NUL, no terminator counted", () => {
    const { addr, length } = encodeSockaddrUn("@notify");
    expect(addr[2]).toBe(0);
    expect(new TextDecoder().decode(addr.slice(3, 9))).toBe("notify");
    expect(length).toBe(2 + 1 + 6);
  });

  test("unsupported or oversized addresses are refused", () => {
    expect(() => encodeSockaddrUn("vsock:2:1234")).toThrow(/unsupported NOTIFY_SOCKET/);
    expect(() => encodeSockaddrUn(`/${"x".repeat(200)}`)).toThrow(/longer than 108/);
  });
});

test("the watchdog applies when WATCHDOG_USEC is set and WATCHDOG_PID is unset or ours", () => {
  expect(watchdogUsecFrom({}, 10)).toBeNull();
  expect(watchdogUsecFrom({ WATCHDOG_USEC: "3000000" }, 10)).toBe(3_000_000);
  expect(watchdogUsecFrom({ WATCHDOG_USEC: "3000000", WATCHDOG_PID: "10" }, 10)).toBe(3_000_000);
  expect(watchdogUsecFrom({ WATCHDOG_USEC: "3000000", WATCHDOG_PID: "11" }, 10)).toBeNull();
  expect(watchdogUsecFrom({ WATCHDOG_USEC: "0" }, 10)).toBeNull();
  expect(watchdogUsecFrom({ WATCHDOG_USEC: "soon" }, 10)).toBeNull();
});

describe("createNotifier", () => {
  test("without NOTIFY_SOCKET: disabled, every call a no-op, no transport opened", () => {
    let opened = false;
    const n = createNotifier({ WATCHDOG_USEC: "1000000" }, { openTransport: () => ((opened = true), fakeTransport()) });
    expect(n.enabled).toBe(false);
    expect(n.transport).toBeNull();
    expect(n.watchdogUsec).toBeNull();
    expect([n.ready(), n.status("x"), n.watchdog(), n.stopping()]).toEqual([false, false, false, false]);
    expect(opened).toBe(false);
    expect(n.lastError).toBe("NOTIFY_SOCKET is not set");
  });

  test("sends the sd_notify assignments, one datagram per call", () => {
    const t = fakeTransport();
    const n = createNotifier({ NOTIFY_SOCKET: "@x", WATCHDOG_USEC: "4000000" }, { openTransport: () => t, pid: 7 });
    expect(n.enabled).toBe(true);
    expect(n.watchdogUsec).toBe(4_000_000);
    expect(n.watchdogIntervalMs).toBe(2000);
    n.status("warming");
    n.ready();
    n.ready("signer #1");
    n.watchdog();
    n.reloading(123.4);
    n.stopping("bye");
    n.send("EXTEND_TIMEOUT_USEC=5000000");
    expect(t.sent).toEqual([
      "STATUS=warming",
      "READY=1",
      "READY=1\nSTATUS=signer #1",
      "WATCHDOG=1",
      "RELOADING=1\nMONOTONIC_USEC=123",
      "STOPPING=1\nSTATUS=bye",
      "EXTEND_TIMEOUT_USEC=5000000",
    ]);
  });

  test("a newline in a status cannot inject another assignment", () => {
    const t = fakeTransport();
    createNotifier({ NOTIFY_SOCKET: "@x" }, { openTransport: () => t }).status("a\nREADY=1");
    expect(t.sent).toEqual(["STATUS=a READY=1"]);
  });

  test("no watchdog pings when the watchdog is for another process", () => {
    const t = fakeTransport();
    const n = createNotifier({ NOTIFY_SOCKET: "@x", WATCHDOG_USEC: "1", WATCHDOG_PID: "99" }, { openTransport: () => t, pid: 7 });
    expect(n.watchdog()).toBe(false);
    expect(n.watchdogIntervalMs).toBeNull();
    expect(t.sent).toEqual([]);
  });

  test("a transport that cannot open disables notifications and says why", () => {
    const n = createNotifier({ NOTIFY_SOCKET: "vsock:1:2" });
    expect(n.enabled).toBe(false);
    expect(n.ready()).toBe(false);
    expect(n.lastError).toMatch(/unsupported NOTIFY_SOCKET/);
  });
});

describe("transports", () => {
  const dir = mkdtempSync(join(tmpdir(), "jorm-notify-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const python = Bun.which("python3");

  // Bun cannot bind a Unix datagram socket, so a small python3 receiver records what arrives.
  async function receive(address: string, count: number, sendAll: () => void): Promise<string[]> {
    const script = `
import socket, sys, json
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
a = sys.argv[1]
s.bind(("\\0" + a[1:]) if a.startswith("@") else a)
s.settimeout(5)
print("bound", flush=True)
print(json.dumps([s.recv(4096).decode() for _ in range(int(sys.argv[2]))]), flush=True)`;
    const proc = Bun.spawn([python!, "-c", script, address, String(count)], { stdout: "pipe", stderr: "inherit" });
    const reader = proc.stdout.getReader();
    let text = "";
    while (!text.includes("bound\n")) {
      const { value, done } = await reader.read();
      if (done) throw new Error("receiver died");
      text += new TextDecoder().decode(value);
    }
    sendAll();
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      text += new TextDecoder().decode(value);
    }
    await proc.exited;
    return JSON.parse(text.slice(text.indexOf("\n") + 1)) as string[];
  }

  test.skipIf(!python)("FFI sendto delivers to an abstract socket", async () => {
    const address = `@jorm-notify-test-${process.pid}`;
    const got = await receive(address, 2, () => {
      const n = createNotifier({ NOTIFY_SOCKET: address });
      expect(n.transport).toBe("ffi");
      expect(n.ready("up")).toBe(true);
      expect(n.status("second")).toBe(true);
      n.close();
    });
    expect(got).toEqual(["READY=1\nSTATUS=up", "STATUS=second"]);
  });

  test.skipIf(!python)("FFI sendto delivers to a filesystem socket", async () => {
    const address = join(dir, "notify.sock");
    const got = await receive(address, 1, () => {
      const t = createFfiTransport(address);
      expect(t.send("WATCHDOG=1")).toBe(true);
      t.close();
      expect(t.send("WATCHDOG=1")).toBe(false);
    });
    expect(got).toEqual(["WATCHDOG=1"]);
  });

  test("FFI send to a socket nobody listens on fails with errno, without throwing", () => {
    const t = createFfiTransport(join(dir, "nobody.sock"));
    expect(t.send("READY=1")).toBe(false);
    expect(t.lastError).toMatch(/sendto .*nobody.sock failed \(errno 2\)/);
    t.close();
  });

  test("the systemd-notify fallback passes each assignment as an argument, in order, one helper at a time", async () => {
    const fake = join(dir, "fake-notify");
    const out = join(dir, "args");
    // The first message is slow to deliver: a later one must still arrive after it.
    writeFileSync(fake, `#!/bin/sh\n[ "$1" = STATUS=first ] && sleep 0.3\nprintf '%s|' "$@" "$NOTIFY_SOCKET" >> ${out}\necho >> ${out}\n`);
    chmodSync(fake, 0o755);
    const t = createSystemdNotifyTransport({ NOTIFY_SOCKET: "@sock", PATH: "/usr/bin:/bin" }, fake);
    expect(t.send("STATUS=first")).toBe(true);
    expect(t.send("READY=1\nSTATUS=a b")).toBe(true);
    const deadline = performance.now() + 5000;
    while (performance.now() < deadline && !(await Bun.file(out).exists() && readFileSync(out, "utf8").split("\n").length > 2)) {
      await Bun.sleep(20);
    }
    expect(readFileSync(out, "utf8")).toBe("STATUS=first|@sock|\nREADY=1|STATUS=a b|@sock|\n");
    expect(t.lastError).toBeNull();
  });

  test("a missing systemd-notify is reported, not thrown", () => {
    const t = createSystemdNotifyTransport({ PATH: "/nonexistent" });
    expect(t.send("READY=1")).toBe(false);
    expect(t.lastError).toMatch(/systemd-notify: not found/);
  });
});

// Under a real user manager: readiness, status and the watchdog as systemd itself sees them.
const um = await ensureUserManager();
test.if(requireUserManager)("CI has a real user manager for the notify tests", () => {
  expect(um.ok ? "ok" : um.reason).toBe("ok");
});

describe("under a real systemd --user manager", () => {
  const it = um.ok ? test : test.skip;
  const env = um.ok ? um.env : {};
  const child = join(import.meta.dir, "fixtures", "notify-child.ts");
  const prefix = `jmn${process.pid}`;
  const started: string[] = [];

  async function systemctl(...args: string[]) {
    const r = await bunSpawner(["systemctl", "--user", "--no-pager", ...args], { timeoutMs: 10_000, env });
    if (r.exitCode !== 0) throw new Error(`systemctl ${args.join(" ")}: ${r.stderr}`);
    return r.stdout;
  }
  async function show(unit: string): Promise<Record<string, string>> {
    const out = await systemctl("show", "--property=ActiveState,SubState,StatusText,Result,NRestarts", unit);
    return Object.fromEntries(out.trim().split("\n").map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]));
  }
  async function run(name: string, props: string[], childEnv: Record<string, string>) {
    const unit = `${prefix}-${name}.service`;
    started.push(unit);
    const args = ["systemd-run", "--user", "--no-block", `--unit=${unit}`, "-p", "Type=notify"];
    for (const p of props) args.push("-p", p);
    for (const [k, v] of Object.entries({ PATH: env.PATH ?? "/usr/bin:/bin", ...childEnv })) args.push(`--setenv=${k}=${v}`);
    args.push(process.execPath, child);
    const r = await bunSpawner(args, { timeoutMs: 10_000, env });
    if (r.exitCode !== 0) throw new Error(`systemd-run: ${r.stderr}`);
    return unit;
  }
  async function until(unit: string, ok: (s: Record<string, string>) => boolean, timeoutMs = 8000) {
    const deadline = performance.now() + timeoutMs;
    let s = await show(unit);
    while (!ok(s) && performance.now() < deadline) {
      await Bun.sleep(50);
      s = await show(unit);
    }
    return s;
  }

  afterAll(async () => {
    if (!um.ok || started.length === 0) return;
    await bunSpawner(["systemctl", "--user", "stop", ...started], { timeoutMs: 10_000, env });
    await bunSpawner(["systemctl", "--user", "reset-failed", ...started], { timeoutMs: 10_000, env });
  });

  it("a Type=notify unit is active only after READY=1, and shows the STATUS line", async () => {
    const unit = await run("ready", [], { JMN_DELAY_MS: "1500" });
    const before = await until(unit, (s) => s.StatusText === "warming up");
    expect(before).toMatchObject({ ActiveState: "activating", StatusText: "warming up" });
    const after = await until(unit, (s) => s.ActiveState === "active");
    expect(after).toMatchObject({ ActiveState: "active", SubState: "running", StatusText: "serving via ffi" });
  });

  it("the systemd-notify fallback works with NotifyAccess=all", async () => {
    const unit = await run("fallback", ["NotifyAccess=all"], { JMN_TRANSPORT: "systemd-notify" });
    const s = await until(unit, (x) => x.ActiveState === "active");
    expect(s).toMatchObject({ ActiveState: "active", StatusText: "serving via systemd-notify" });
  });

  it("a process that stops sending WATCHDOG=1 is killed by the watchdog; one that keeps sending lives", async () => {
    const alive = await run("alive", ["WatchdogSec=1"], {});
    const stalled = await run("stalled", ["WatchdogSec=1"], { JMN_STALL: "1" });
    const dead = await until(stalled, (s) => s.ActiveState === "failed");
    expect(dead).toMatchObject({ ActiveState: "failed", Result: "watchdog" });
    // the stalled one was ready then silent for 1 s; the pinging one has outlived that by now
    expect(await show(alive)).toMatchObject({ ActiveState: "active", Result: "success", NRestarts: "0" });
  });
});
