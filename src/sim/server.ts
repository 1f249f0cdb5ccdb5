// The simulator over real HTTP: Bun.serve on loopback serving /api/v0/* from a SimNode, exactly as
// the node would (a REST-hang fault really holds the request open), plus /sim/* control endpoints
// that bypass the node's faults (inject a fault, read the journal, peek at the state).

import type { Server } from "bun";
import type { Fault, World } from "./world.ts";
import type { Scheduler } from "./clock.ts";
import type { SimNode } from "./node.ts";
import type { Journal } from "./journal.ts";
import type { RawRequest } from "../node/types.ts";

export const API_PREFIX = "/api/v0";
export const CONTROL_PREFIX = "/sim";

export interface ServeNodeOptions {
  hostname?: string;
  /** 0: a free port */
  port?: number;
  /** The journal /sim/journal returns (default: none) */
  journal?: Journal;
  /** Serve /sim/* (default true) */
  control?: boolean;
  /** Applied for /sim/fault; default applies it to the node (see applyNodeFault) */
  onFault?: (fault: Fault) => void;
}

export interface SimServer {
  readonly url: string;
  readonly port: number;
  /** Close the listener and every open connection (the process went away). */
  stop(): void;
}

const CRASH_AFTER_ANSWER_MS = 20;
const METHODS = new Set(["GET", "POST", "DELETE"]);

/** A fault applied to one node (the process-level part of World.inject). */
export function applyNodeFault(node: SimNode, fault: Fault): void {
  switch (fault.kind) {
    case "crash":
      return node.kill("crash");
    case "stuck":
      return node.setStuck(fault.on ?? true);
    case "restHang":
      return node.setRestHang(fault.on ?? true);
    case "rest500":
      return node.setRest500(fault.on ?? true);
    case "slowBoot":
      if (fault.bootstrapMs !== null) node.setBootstrapMs(fault.bootstrapMs);
      return;
    case "freeze":
      return node.freeze();
    case "thaw":
      return node.thaw();
    case "slowSchedule":
      return node.setScheduleComputeMs(fault.computeMs ?? 0);
  }
}

const FAULT_KINDS = new Set(["crash", "stuck", "restHang", "rest500", "slowBoot", "freeze", "thaw", "slowSchedule"]);

export function parseFault(text: string): Fault | string {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return "body is not JSON";
  }
  const v = value as Record<string, unknown> | null;
  if (!v || typeof v !== "object" || typeof v.kind !== "string" || !FAULT_KINDS.has(v.kind))
    return `expected {"kind": one of ${[...FAULT_KINDS].join(", ")}}`;
  if (v.kind === "slowBoot" && !(v.bootstrapMs === null || typeof v.bootstrapMs === "number")) return "slowBoot needs bootstrapMs";
  if (v.kind === "slowSchedule" && !(v.computeMs === null || typeof v.computeMs === "number")) return "slowSchedule needs computeMs";
  if ("on" in v && typeof v.on !== "boolean") return "on must be a boolean";
  return v as unknown as Fault;
}

function controlState(node: SimNode) {
  return {
    runner: node.runner,
    incarnation: node.incarnation,
    pid: node.pid,
    alive: node.isAlive,
    state: node.state,
    frozen: node.isFrozen,
    computing: node.isComputing,
    terminating: node.isTerminating,
    keys: node.leaderIds(),
    height: node.height(),
    faults: node.faults,
  };
}

export function serveNode(node: SimNode, opts: ServeNodeOptions = {}): SimServer {
  const control = opts.control ?? true;
  const onFault = opts.onFault ?? ((f: Fault) => applyNodeFault(node, f));
  const server: Server<undefined> = Bun.serve({
    hostname: opts.hostname ?? "127.0.0.1",
    port: opts.port ?? 0,
    // A hanging node holds the request for as long as the client waits: no server-side timeout.
    idleTimeout: 0,
    async fetch(request) {
      const url = new URL(request.url);
      if (control && url.pathname.startsWith(`${CONTROL_PREFIX}/`)) {
        const what = url.pathname.slice(CONTROL_PREFIX.length);
        if (request.method === "GET" && what === "/state") return Response.json(controlState(node));
        if (request.method === "GET" && what === "/journal") return Response.json(opts.journal?.entries() ?? []);
        if (request.method === "POST" && what === "/fault") {
          const fault = parseFault(await request.text());
          if (typeof fault === "string") return new Response(`${fault}\n`, { status: 400 });
          // A crash closes this very socket: answer first, then die.
          if (fault.kind === "crash") setTimeout(() => onFault(fault), CRASH_AFTER_ANSWER_MS);
          else onFault(fault);
          return Response.json({ applied: fault });
        }
        return new Response("unknown control endpoint\n", { status: 404 });
      }
      if (!url.pathname.startsWith(`${API_PREFIX}/`) || !METHODS.has(request.method)) return new Response("", { status: 404 });
      const raw: RawRequest = {
        method: request.method as RawRequest["method"],
        path: url.pathname.slice(API_PREFIX.length),
        body: request.method === "POST" ? await request.text() : undefined,
      };
      // Rejects (reset/refused) only when the process is gone, and then stop() closes the socket.
      const res = await node.handle(raw);
      return new Response(res.body, { status: res.status, headers: { "content-type": res.contentType } });
    },
    error() {
      return new Response("", { status: 502 });
    },
  });
  const port = server.port ?? 0;
  return {
    url: `http://${opts.hostname ?? "127.0.0.1"}:${port}`,
    port,
    stop: () => {
      void server.stop(true);
    },
  };
}

export interface ServeWorldOptions {
  hostname?: string;
  /** The REST port of runner `id`, e.g. (id) => 3100 + id */
  portOf: (id: number) => number;
}

export interface WorldServers {
  urlOf(id: number): string;
  stop(): void;
}

/**
 * Every runner of a (real-time) World on its own loopback port, like runners under systemd: the
 * port listens while the runner's process lives and is closed (refused) while it is down.
 * /sim/fault goes through World.inject, so slow boot/schedule overrides outlive the process.
 */
export function serveWorld<C extends Scheduler>(world: World<C>, opts: ServeWorldOptions): WorldServers {
  const hostname = opts.hostname ?? "127.0.0.1";
  const servers = new Map<number, SimServer>();
  const open = (id: number, node: SimNode) => {
    servers.get(id)?.stop();
    servers.set(id, serveNode(node, { hostname, port: opts.portOf(id), journal: world.journal, onFault: (f) => world.inject(id, f) }));
  };
  const unsubscribe = world.onProcess((e) => {
    if (e.kind === "spawn") open(e.id, e.node);
    else if (servers.get(e.id)) {
      servers.get(e.id)!.stop();
      servers.delete(e.id);
    }
  });
  for (const id of world.ids) {
    const node = world.node(id);
    if (node) open(id, node);
  }
  return {
    urlOf: (id) => `http://${hostname}:${opts.portOf(id)}`,
    stop: () => {
      unsubscribe();
      for (const s of servers.values()) s.stop();
      servers.clear();
    },
  };
}
