// sd_notify(3) without native addons. Neither Node's nor Bun's socket APIs have Unix datagram
// sockets, so the datagram goes through libc's socket()/sendto() via bun:ffi, sent from this process
// (the unit's main PID, which the default NotifyAccess=main requires). Where FFI cannot load libc,
// `systemd-notify` is spawned instead; its messages come from another PID, so the unit then needs
// NotifyAccess=all. Without NOTIFY_SOCKET (not run by systemd as Type=notify) every call is a no-op.

import { dlopen, FFIType, read } from "bun:ffi";

type Env = Record<string, string | undefined>;

export interface NotifyTransport {
  /** Hands one datagram to the kernel (or to a helper process); false when it could not. */
  send(message: string): boolean;
  close(): void;
  readonly kind: "ffi" | "systemd-notify" | "custom";
  readonly lastError: string | null;
}

export interface Notifier {
  /** NOTIFY_SOCKET is set and a transport could be opened */
  readonly enabled: boolean;
  /** The transport in use; null when disabled */
  readonly transport: NotifyTransport["kind"] | null;
  /** WatchdogSec of the unit in µs when the watchdog applies to this process, else null */
  readonly watchdogUsec: number | null;
  /** How often to call watchdog(): half the watchdog timeout, as sd_watchdog_enabled(3) advises */
  readonly watchdogIntervalMs: number | null;
  /** Why notifications are disabled or the last send failed */
  readonly lastError: string | null;
  ready(status?: string): boolean;
  status(text: string): boolean;
  watchdog(): boolean;
  stopping(status?: string): boolean;
  /** RELOADING=1 with MONOTONIC_USEC (for Type=notify-reload); follow with ready() when done. */
  reloading(monotonicUsec?: number): boolean;
  /** Any raw assignments, one per line (e.g. "EXTEND_TIMEOUT_USEC=…") */
  send(...assignments: string[]): boolean;
  close(): void;
}

const AF_UNIX = 1;
const SOCK_DGRAM = 2;
const SOCK_CLOEXEC = 0o2000000;
/** A dead receiver must not kill us with SIGPIPE */
const MSG_NOSIGNAL = 0x4000;
const SUN_PATH_MAX = 108;
const SOCKADDR_FAMILY_BYTES = 2;

/**
 * sockaddr_un for NOTIFY_SOCKET: "/path" is a filesystem socket (NUL-terminated), "@name" an abstract
 * one (leading NUL, length without terminator, as sd_notify does). Other forms (vsock:) are refused.
 */
export function encodeSockaddrUn(socket: string): { addr: Uint8Array; length: number } {
  const abstract = socket.startsWith("@");
  if (!abstract && !socket.startsWith("/")) throw new Error(`unsupported NOTIFY_SOCKET "${socket}" (need /path or @abstract)`);
  const name = new TextEncoder().encode(abstract ? socket.slice(1) : socket);
  const pathBytes = abstract ? 1 + name.length : name.length + 1;
  if (pathBytes > SUN_PATH_MAX) throw new Error(`NOTIFY_SOCKET is longer than ${SUN_PATH_MAX} bytes`);
  const addr = new Uint8Array(SOCKADDR_FAMILY_BYTES + SUN_PATH_MAX);
  new DataView(addr.buffer).setUint16(0, AF_UNIX, true);
  addr.set(name, SOCKADDR_FAMILY_BYTES + (abstract ? 1 : 0));
  return { addr, length: SOCKADDR_FAMILY_BYTES + pathBytes };
}

function loadLibc() {
  const symbols = {
    socket: { args: [FFIType.i32, FFIType.i32, FFIType.i32], returns: FFIType.i32 },
    sendto: {
      args: [FFIType.i32, FFIType.ptr, FFIType.u64, FFIType.i32, FFIType.ptr, FFIType.u32],
      returns: FFIType.i64_fast,
    },
    close: { args: [FFIType.i32], returns: FFIType.i32 },
    __errno_location: { args: [], returns: FFIType.ptr },
  } as const;
  let lastError: unknown;
  for (const name of ["libc.so.6", "libc.so"]) {
    try {
      return dlopen(name, symbols).symbols;
    } catch (error) {
      lastError = error;
    }
  }
  throw new Error(`cannot load libc through bun:ffi: ${(lastError as Error | undefined)?.message ?? "unknown"}`);
}

/** One datagram socket, opened once; each message is one sendto(). */
export function createFfiTransport(socket: string): NotifyTransport {
  const { addr, length } = encodeSockaddrUn(socket);
  const libc = loadLibc();
  const fd = libc.socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  const errno = () => {
    const p = libc.__errno_location();
    return p === null ? "?" : String(read.i32(p, 0));
  };
  if (fd < 0) throw new Error(`socket(AF_UNIX, SOCK_DGRAM) failed (errno ${errno()})`);
  let open = true;
  let lastError: string | null = null;
  return {
    kind: "ffi",
    get lastError() {
      return lastError;
    },
    send(message) {
      if (!open) return false;
      const data = new TextEncoder().encode(message);
      const sent = Number(libc.sendto(fd, data, data.length, MSG_NOSIGNAL, addr, length));
      if (sent === data.length) return true;
      lastError = `sendto ${socket} failed (errno ${errno()})`;
      return false;
    },
    close() {
      if (open) libc.close(fd);
      open = false;
    },
  };
}

/**
 * `systemd-notify VAR=VALUE…`: works where FFI does not, but the sender is another PID, so the unit
 * needs NotifyAccess=all (and systemd older than 254 may not attribute a message from a process that
 * already exited to the unit). Sends are queued, one helper at a time, so a late STATUS cannot
 * overtake the READY sent after it; the caller (the daemon's loop) never waits.
 */
export const SYSTEMD_NOTIFY_TIMEOUT_MS = 5_000;

export function createSystemdNotifyTransport(env: Env, binary = "systemd-notify"): NotifyTransport {
  let lastError: string | null = null;
  let queue: Promise<void> = Promise.resolve();
  async function spawnOne(assignments: string[]) {
    try {
      const proc = Bun.spawn([binary, ...assignments], {
        env: env as Record<string, string>,
        stdin: "ignore",
        stdout: "ignore",
        stderr: "ignore",
        timeout: SYSTEMD_NOTIFY_TIMEOUT_MS,
      });
      const code = await proc.exited;
      if (code !== 0) lastError = `${binary} exited ${code}`;
    } catch (error) {
      lastError = `cannot run ${binary}: ${(error as Error).message}`;
    }
  }
  return {
    kind: "systemd-notify",
    get lastError() {
      return lastError;
    },
    send(message) {
      if (Bun.which(binary, { PATH: env.PATH ?? "" }) === null) {
        lastError = `cannot run ${binary}: not found`;
        return false;
      }
      const assignments = message.split("\n").filter(Boolean);
      queue = queue.then(() => spawnOne(assignments));
      return true;
    },
    close() {},
  };
}

export interface NotifierOptions {
  /** Opens the transport for NOTIFY_SOCKET; default: FFI, then systemd-notify */
  openTransport?: (socket: string, env: Env) => NotifyTransport;
  /** This process's pid (WATCHDOG_PID names the process the watchdog is meant for) */
  pid?: number;
}

function defaultOpenTransport(socket: string, env: Env): NotifyTransport {
  try {
    return createFfiTransport(socket);
  } catch (error) {
    if (Bun.which("systemd-notify", { PATH: env.PATH ?? "" }) !== null) return createSystemdNotifyTransport(env);
    throw error;
  }
}

/** WATCHDOG_USEC applies to us only if WATCHDOG_PID is unset or is our pid (sd_watchdog_enabled). */
export function watchdogUsecFrom(env: Env, pid: number): number | null {
  const usec = env.WATCHDOG_USEC;
  if (usec === undefined || !/^\d+$/.test(usec) || Number(usec) === 0) return null;
  const wpid = env.WATCHDOG_PID;
  if (wpid !== undefined && wpid !== "" && wpid !== String(pid)) return null;
  return Number(usec);
}

/** One line per assignment: a newline inside a value would start a new (unintended) assignment. */
const oneLine = (text: string) => text.replace(/[\r\n]+/g, " ");

export function createNotifier(env: Env = process.env, options: NotifierOptions = {}): Notifier {
  const pid = options.pid ?? process.pid;
  const socket = env.NOTIFY_SOCKET;
  let transport: NotifyTransport | null = null;
  let openError: string | null = socket ? null : "NOTIFY_SOCKET is not set";
  if (socket) {
    try {
      transport = (options.openTransport ?? defaultOpenTransport)(socket, env);
    } catch (error) {
      openError = (error as Error).message;
    }
  }
  const watchdogUsec = transport ? watchdogUsecFrom(env, pid) : null;

  const send = (...assignments: string[]) =>
    transport !== null && assignments.length > 0 && transport.send(assignments.map(oneLine).join("\n"));

  return {
    enabled: transport !== null,
    transport: transport?.kind ?? null,
    watchdogUsec,
    watchdogIntervalMs: watchdogUsec === null ? null : Math.max(1, Math.floor(watchdogUsec / 2 / 1000)),
    get lastError() {
      return transport?.lastError ?? openError;
    },
    ready: (status) => send("READY=1", ...(status === undefined ? [] : [`STATUS=${status}`])),
    status: (text) => send(`STATUS=${text}`),
    watchdog: () => watchdogUsec !== null && send("WATCHDOG=1"),
    stopping: (status) => send("STOPPING=1", ...(status === undefined ? [] : [`STATUS=${status}`])),
    reloading: (monotonicUsec) =>
      send("RELOADING=1", ...(monotonicUsec === undefined ? [] : [`MONOTONIC_USEC=${Math.round(monotonicUsec)}`])),
    send,
    close: () => transport?.close(),
  };
}
