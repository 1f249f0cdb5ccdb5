import { expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createListenerReader, listeningInodes, parseProcNetTcp, socketInode } from "../../src/systemd/sockets.ts";

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
    { port: 3100, state: "0A", inode: "5001" },
    { port: 2024, state: "0A", inode: "1206" },
    { port: 3100, state: "01", inode: "5002" },
  ]);
  expect(parseProcNetTcp(TCP6)).toEqual([{ port: 3101, state: "0A", inode: "6001" }]);
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
