// GET /metrics over Bun.serve. The body is rendered per scrape from the registry's last tick, so a
// scrape never waits on the loop (and a stalled loop shows as a stale last_observation timestamp).

import { UserError } from "../errors.ts";
import { CONTENT_TYPE } from "./exposition.ts";

export interface MetricsServer {
  readonly url: string;
  readonly port: number;
  stop(): void;
}

/** "127.0.0.1:9310" or "[::1]:9310" → hostname and port (port 0: any free one, for tests). */
export function parseListen(listen: string): { hostname: string; port: number } {
  const m = /^(\[[0-9a-f:.]+\]|[^:\s[\]]+):(\d+)$/i.exec(listen);
  if (!m) throw new UserError(`metrics_listen: expected "host:port", found ${JSON.stringify(listen)}`);
  return { hostname: m[1]!.replace(/^\[(.*)\]$/, "$1"), port: Number(m[2]) };
}

export function serveMetrics(listen: string, render: () => string): MetricsServer {
  const { hostname, port } = parseListen(listen);
  let server;
  try {
    server = Bun.serve({
      hostname,
      port,
      fetch(req) {
        const path = new URL(req.url).pathname;
        if (req.method !== "GET" && req.method !== "HEAD") return new Response("only GET\n", { status: 405, headers: { allow: "GET, HEAD" } });
        if (path === "/metrics") return new Response(render(), { headers: { "content-type": CONTENT_TYPE } });
        if (path === "/") return new Response("jorm-master: metrics at /metrics\n", { headers: { "content-type": "text/plain; charset=utf-8" } });
        return new Response("not found; metrics are at /metrics\n", { status: 404 });
      },
      error() {
        return new Response("internal error\n", { status: 500 });
      },
    });
  } catch (e) {
    throw new UserError(`metrics_listen ${listen}: cannot listen: ${e instanceof Error ? e.message : String(e)} (set metrics_listen: "" to switch metrics off)`);
  }
  const host = hostname.includes(":") ? `[${hostname}]` : hostname;
  return {
    url: `http://${host}:${server.port}/metrics`,
    port: server.port ?? port,
    stop: () => void server.stop(true),
  };
}
