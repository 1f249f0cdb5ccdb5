import { expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createListenerReader, listeningInodes, parseProcNetTcp, parseStatusUids, socketInode } from "../../src/systemd/sockets.ts";

const HEADER = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode";
// 127.0.0.1:3100 LISTEN (inode 5001), 0.0.0.0:2024 LISTEN, a connection from 127.0.0.1:3100 (ESTABLISHED)
const TCP = [
  HEADER,
  "   0: 0100007F:0C1C 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 5001 1 0000000000000000 100 0 0 10 0",
  "   1: 00000000:07E8 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1206 1 0000000000000000 100 0 0 10 0",
  "   2: 0100007F:0C1C 0100007F:D2F0 01 00000000:00000000 00:00000000 00000000  1000        0 5002 1 0000000000000000 20 4 30 10 -1",
  "garbage line",
].join("\n");
// [::]:3101 LISTEN (inode 6001)
const TCP6 = [
  "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode",
  "   0: 00000000000000000000000000000000:0C1D 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 6001 1 0000000000000000 100 0 0 10 0",
].join("\n");

test("/proc/net/tcp{,6}: port, state and inode of each socket; lines that do not fit are skipped", () => {
  expect(parseProcNetTcp(TCP)).toEqual([
    { port: 3100, state: "0A", inode: "5001", uid: 1000 },
    { port: 2024, state: "0A", inode: "1206", uid: 0 },
    { port: 3100, state: "01", inode: "5002", uid: 1000 },
  ]);
  expect(parseProcNetTcp(TCP6)).toEqual([{ port: 3101, state: "0A", inode: "6001", uid: 1000 }]);
  expect(parseProcNetTcp("")).toEqual([]);
});

test("only LISTEN sockets on the port count, on any local address", () => {
  const all = [...parseProcNetTcp(TCP), ...parseProcNetTcp(TCP6)];
  expect([...listeningInodes(all, 3100)]).toEqual(["5001"]);
  expect([...listeningInodes(all, 3101)]).toEqual(["6001"]);
  expect(listeningInodes(all, 4000).size).toBe(0);
});

test("fd links: only socket:[inode] names a socket", () => {
  expect(socketInode("socket:[5001]")).toBe("5001");
  expect(socketInode("pipe:[5001]")).toBeNull();
  expect(socketInode("/dev/null")).toBeNull();
  expect(socketInode("socket:[]")).toBeNull();
});

test("a fake /proc: the runner's pid holds the port; another pid, a second listener or an unreadable fd dir do not", async () => {
  const root = mkdtempSync(join(tmpdir(), "jorm-sockets-"));
  try {
    mkdirSync(join(root, "net"));
    writeFileSync(join(root, "net", "tcp"), TCP);
    writeFileSync(join(root, "net", "tcp6"), TCP6);
    mkdirSync(join(root, "42", "fd"), { recursive: true });
    symlinkSync("socket:[5001]", join(root, "42", "fd", "7"));
    symlinkSync("/dev/null", join(root, "42", "fd", "0"));
    mkdirSync(join(root, "43", "fd"), { recursive: true });
    symlinkSync("socket:[9999]", join(root, "43", "fd", "3"));
    const r = createListenerReader(root);
    expect(await r.whyNotListener(42, 3100)).toBeNull();
    expect(await r.whyNotListener(43, 3100)).toContain("another process than pid 43");
    expect(await r.whyNotListener(42, 3101)).toContain("another process than pid 42");
    expect(await r.whyNotListener(42, 4000)).toContain("nothing listens");
    expect(await r.whyNotListener(44, 3100)).toContain("cannot read");
    expect(await r.whyNotListener(0, 3100)).toContain("no main process");
    // SO_REUSEPORT: a second listener on the same port shares its connections.
    writeFileSync(join(root, "net", "tcp6"), `${TCP6}\n   1: 00000000000000000000000000000000:0C1C 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000  1001        0 7001 1 0 100 0 0 10 0`);
    expect(await r.whyNotListener(42, 3100)).toContain("7001");
    // No IPv6 on the host: tcp6 absent is fine; tcp absent proves nothing.
    rmSync(join(root, "net", "tcp6"));
    expect(await r.whyNotListener(42, 3100)).toBeNull();
    rmSync(join(root, "net", "tcp"));
    expect(await r.whyNotListener(42, 3100)).toContain("cannot read");
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test("the real /proc: a server in this process is found as owned by process.pid", async () => {
  const server = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => new Response("") });
  try {
    const r = createListenerReader();
    expect(await r.whyNotListener(process.pid, server.port!)).toBeNull();
    // pid 1 (init) does not hold it
    expect(await r.whyNotListener(1, server.port!)).not.toBeNull();
  } finally {
    server.stop(true);
  }
});

test("/proc/PID/status: the four uids of the Uid line", () => {
  expect(parseStatusUids("Name:\tjormungandr\nUid:\t1000\t1000\t1000\t1000\nGid:\t1000\t1000\t1000\t1000\n")).toEqual([1000, 1000, 1000, 1000]);
  expect(parseStatusUids("Uid:\t0\t1000\t0\t1000\n")).toEqual([0, 1000, 0, 1000]);
  expect(parseStatusUids("Name:\tx\n")).toBeNull();
});

// A system-scope daemon is root without capabilities; runners run as their own user. The kernel
// refuses it /proc/PID/fd of another user's process (found in review: every key POST refused, so no
// failover could ever promote), so the proof falls back on the listening socket's owner uid.
const canSwitchUsers = process.getuid?.() === 0 && Bun.which("setpriv") !== null;
const NOBODY = 65534;
const OTHER_UID = 65533;

async function spawnAs(uid: number, code: string): Promise<{ proc: ReturnType<typeof Bun.spawn>; line: string }> {
  const proc = Bun.spawn(["setpriv", "--reuid", String(uid), "--regid", String(uid), "--clear-groups", process.execPath, "-e", code], {
    stdin: "ignore",
    stdout: "pipe",
    stderr: "inherit",
  });
  const reader = (proc.stdout as ReadableStream<Uint8Array>).getReader();
  const { value } = await reader.read();
  reader.releaseLock();
  return { proc, line: new TextDecoder().decode(value).trim() };
}

async function checkWithoutCapabilities(pid: number, port: number): Promise<string | null> {
  const src = join(import.meta.dir, "../../src/systemd/sockets.ts");
  const code = `const { createListenerReader } = await import(${JSON.stringify(src)}); console.log(JSON.stringify(await createListenerReader().whyNotListener(${pid}, ${port})));`;
  const proc = Bun.spawn(["setpriv", "--bounding-set=-all", "--inh-caps=-all", "--ambient-caps=-all", "--", process.execPath, "-e", code], { stdout: "pipe", stderr: "pipe" });
  const [out, err] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  if (out.trim() === "") throw new Error(`the check printed nothing: ${err}`);
  return JSON.parse(out) as string | null;
}

test.skipIf(!canSwitchUsers)("root without capabilities (the system-scope daemon): a runner of another user is proven by its socket's uid; another user's listener is refused", async () => {
  const serve = `const s = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => new Response("") }); console.log(s.port); setInterval(() => {}, 1000);`;
  const runner = await spawnAs(NOBODY, serve);
  const bystander = await spawnAs(OTHER_UID, `console.log(process.pid); setInterval(() => {}, 1000);`);
  try {
    const port = Number(runner.line);
    expect(port).toBeGreaterThan(0);
    // The runner's own process, read without the fd links: accepted.
    expect(await checkWithoutCapabilities(runner.proc.pid, port)).toBeNull();
    // The unit's main process is another user's: the port's socket is not its user's.
    const why = await checkWithoutCapabilities(bystander.proc.pid, port);
    expect(why).toContain(`held by uid ${NOBODY}`);
  } finally {
    runner.proc.kill("SIGKILL");
    bystander.proc.kill("SIGKILL");
  }
}, 20_000);
