// Who listens on a TCP port, from /proc: the node secret is posted only to a runner unit's main
// process, never to whatever else bound the runner's REST port while it restarted (another local
// user would receive the pool's key). Linux only; the root is injectable so tests lay out a fake /proc.
//
// A LISTEN socket appears in /proc/net/tcp{,6} with its inode; a process holds it when one of the
// links in /proc/PID/fd reads `socket:[inode]`. Every socket listening on the port must be the
// process's: with SO_REUSEPORT a second listener on the same port would share the connections.
//
// A system-scope daemon runs as root with no capabilities, and a runner runs as its own user
// (cardano): the kernel then refuses the daemon /proc/PID/fd (mode 0500, owned by the runner's uid;
// no CAP_DAC_READ_SEARCH). There the proof is the socket's owner instead: every listening socket on
// the port must belong to the uid the runner's main process runs as (/proc/PID/status, readable by
// all). Only that user (or root) can create such a socket, so another local user binding the port
// while the runner restarts is still refused; the runner's own user is trusted with the key anyway
// (it runs the node that holds it).

import { readdir, readFile, readlink } from "node:fs/promises";
import { join } from "node:path";
import type { ListenerCheck } from "../master/ports.ts";
import { DEFAULT_PROC_ROOT } from "./proc.ts";

/** st column of /proc/net/tcp: TCP_LISTEN */
const TCP_LISTEN = "0A";

export interface TcpSocket {
  port: number;
  /** The st column, two hex digits ("0A" = LISTEN) */
  state: string;
  inode: string;
  /** The uid column: who created the socket (as seen from the reader's user namespace) */
  uid: number;
}

/**
 * Parses /proc/net/tcp or /proc/net/tcp6: a header line, then one socket a line,
 * `sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode …`, the local address as
 * hex `ADDR:PORT`. Lines that do not fit are skipped (they cannot be the runner's socket).
 */
export function parseProcNetTcp(text: string): TcpSocket[] {
  const out: TcpSocket[] = [];
  for (const line of text.split("\n").slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 10) continue;
    const local = f[1]!;
    const colon = local.lastIndexOf(":");
    const portHex = local.slice(colon + 1);
    if (colon < 0 || !/^[0-9A-Fa-f]{4}$/.test(portHex)) continue;
    const state = f[3]!.toUpperCase();
    const uid = f[7]!;
    const inode = f[9]!;
    if (!/^[0-9A-F]{2}$/.test(state) || !/^\d+$/.test(inode) || !/^\d+$/.test(uid)) continue;
    out.push({ port: parseInt(portHex, 16), state, inode, uid: Number(uid) });
  }
  return out;
}

/** The sockets in LISTEN state on `port` (any local address). */
export function listening(sockets: readonly TcpSocket[], port: number): TcpSocket[] {
  return sockets.filter((s) => s.port === port && s.state === TCP_LISTEN && s.inode !== "0");
}

/** The inodes of the sockets in LISTEN state on `port` (any local address). */
export function listeningInodes(sockets: readonly TcpSocket[], port: number): Set<string> {
  return new Set(listening(sockets, port).map((s) => s.inode));
}

/** The uids of /proc/PID/status's `Uid:` line (real, effective, saved, filesystem); null if absent. */
export function parseStatusUids(status: string): number[] | null {
  const m = /^Uid:\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s*$/m.exec(status);
  return m ? [m[1], m[2], m[3], m[4]].map(Number) : null;
}

/** The inode in a /proc/PID/fd link target `socket:[12345]`, or null for anything else. */
export function socketInode(link: string): string | null {
  const m = /^socket:\[(\d+)\]$/.exec(link);
  return m ? m[1]! : null;
}

export interface ListenerReader {
  /** null when every socket listening on `port` is held by process `pid` (and there is one);
   *  otherwise why not, in words for the log. */
  whyNotListener(pid: number, port: number): Promise<string | null>;
}

export function createListenerReader(root: string = DEFAULT_PROC_ROOT): ListenerReader {
  async function tcpTable(name: "tcp" | "tcp6"): Promise<TcpSocket[] | null> {
    try {
      return parseProcNetTcp(await readFile(join(root, "net", name), "utf8"));
    } catch {
      return null;
    }
  }
  /** The fd dir's socket inodes; "denied" when the kernel refuses this process the links (another
   *  user's process, no capabilities); otherwise why nothing can be said. */
  async function socketsOf(pid: number): Promise<Set<string> | "denied" | string> {
    const dir = join(root, String(pid), "fd");
    let names: string[];
    try {
      names = await readdir(dir);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === "EACCES" || code === "EPERM") return "denied";
      return `cannot read ${dir}: ${code ?? (e as Error).message}`;
    }
    const out = new Set<string>();
    let denied: string | null = null;
    await Promise.all(
      names.map(async (n) => {
        try {
          const inode = socketInode(await readlink(join(dir, n)));
          if (inode !== null) out.add(inode);
        } catch (e) {
          // ENOENT: closed meanwhile, not a socket it holds. Anything else: the links cannot be read
          // (another user namespace, no ptrace access): nothing is proven.
          const code = (e as NodeJS.ErrnoException).code;
          if (code !== "ENOENT") denied = `cannot read the links in ${dir}: ${code ?? (e as Error).message}`;
        }
      }),
    );
    return denied ?? out;
  }
  /** The fallback proof when the fd links are refused: every listener created by the uid the
   *  process runs as (all four of its uids agree: a setuid process proves nothing). */
  async function whyNotSameUser(pid: number, port: number, sockets: readonly TcpSocket[]): Promise<string | null> {
    const path = join(root, String(pid), "status");
    let uids: number[] | null;
    try {
      uids = parseStatusUids(await readFile(path, "utf8"));
    } catch (e) {
      return `cannot read ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`;
    }
    if (uids === null) return `no Uid line in ${path}`;
    const uid = uids[0]!;
    if (uids.some((u) => u !== uid)) return `pid ${pid} runs with mixed uids (${uids.join(" ")})`;
    const foreign = sockets.filter((s) => s.uid !== uid);
    if (foreign.length > 0) {
      return `port ${port} is held by uid ${[...new Set(foreign.map((s) => s.uid))].join(", ")}, not by pid ${pid}'s uid ${uid} (its fds are not readable here, so the socket's owner is the proof)`;
    }
    return null;
  }
  return {
    async whyNotListener(pid, port) {
      if (!Number.isSafeInteger(pid) || pid <= 0) return "the unit has no main process";
      if (!Number.isSafeInteger(port) || port <= 0 || port > 65_535) return `no TCP port to check (${port})`;
      const [v4, v6] = await Promise.all([tcpTable("tcp"), tcpTable("tcp6")]);
      // Without IPv6 there is no tcp6; without tcp nothing can be proven.
      if (v4 === null) return `cannot read ${join(root, "net", "tcp")}`;
      const sockets = listening([...v4, ...(v6 ?? [])], port);
      if (sockets.length === 0) return `nothing listens on port ${port}`;
      const held = await socketsOf(pid);
      if (held === "denied") return whyNotSameUser(pid, port, sockets);
      if (typeof held === "string") return held;
      const foreign = sockets.map((s) => s.inode).filter((i) => !held.has(i));
      if (foreign.length > 0) return `port ${port} is held by another process than pid ${pid} (socket inode ${foreign.join(", ")})`;
      return null;
    },
  };
}

/** The daemon's check: runner `id`'s REST port (from its REST URL) held by `pid`, read from /proc. */
export function restListenerCheck(restUrlOf: (id: number) => string | null, reader: ListenerReader = createListenerReader()): ListenerCheck {
  return {
    async whyNotRunner(id, pid) {
      const url = restUrlOf(id);
      if (url === null) return `runner #${id} has no REST address`;
      let port: number;
      try {
        const u = new URL(url);
        port = Number(u.port || (u.protocol === "https:" ? 443 : 80));
      } catch {
        return `runner #${id}'s REST address ${url} is not a URL`;
      }
      return reader.whyNotListener(pid, port);
    },
  };
}
