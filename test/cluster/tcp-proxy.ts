// A TCP proxy to one etcd member that a test can turn into a black hole: how the real-etcd lease
// test and the cluster e2e cut a host off from etcd while etcd itself stays up.
import type { Socket, TCPSocketListener } from "bun";

export interface Proxy {
  /** What the cut-off host uses as its etcd endpoint */
  url: string;
  /** true: a black hole (bytes dropped both ways, new connections never reach etcd) */
  cut(on: boolean): void;
  stop(): void;
}

export function tcpProxy(target: { hostname: string; port: number }): Proxy {
  let cut = false;
  type Side = { up: Socket<unknown> | null; pending: Uint8Array[] };
  const server: TCPSocketListener<Side> = Bun.listen<Side>({
    hostname: "127.0.0.1",
    port: 0,
    socket: {
      async open(client) {
        client.data = { up: null, pending: [] };
        if (cut) return;
        try {
          const up = await Bun.connect({
            hostname: target.hostname,
            port: target.port,
            socket: { data: (_s, d) => void (cut ? 0 : client.write(d)), close: () => void client.end(), error: () => void client.end() },
          });
          client.data.up = up;
          for (const b of client.data.pending) up.write(b);
          client.data.pending = [];
        } catch {
          client.end();
        }
      },
      data(client, d) {
        if (cut) return;
        if (client.data.up) client.data.up.write(d);
        else client.data.pending.push(new Uint8Array(d));
      },
      close: (client) => void client.data.up?.end(),
      error: (client) => void client.data.up?.end(),
    },
  });
  return { url: `http://127.0.0.1:${server.port}`, cut: (on) => void (cut = on), stop: () => server.stop(true) };
}
