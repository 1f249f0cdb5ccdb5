// Ports for test servers that are opened, closed and opened again (a runner restarting): taken below
// Linux's ephemeral range (32768–60999), where no process's client socket can be holding them by the
// time the test binds them again. (Above it, the REST calls of tests running beside, each on a new
// connection, pick such ports at random: "EADDRINUSE" flakes.)
const LOW_PORT_FROM = 20_000;
const LOW_PORT_TO = 32_000;

function bindable(port: number): boolean {
  try {
    Bun.serve({ hostname: "127.0.0.1", port, fetch: () => new Response("") }).stop(true);
    return true;
  } catch {
    return false;
  }
}

/** The first of `count` consecutive ports that are free now, below the ephemeral range. */
export function freeLowPorts(count: number): number {
  for (let tries = 0; tries < 200; tries++) {
    const base = LOW_PORT_FROM + Math.floor(Math.random() * (LOW_PORT_TO - LOW_PORT_FROM - count));
    let ok = true;
    for (let i = 0; i < count && ok; i++) ok = bindable(base + i);
    if (ok) return base;
  }
  throw new Error(`no ${count} consecutive free ports in ${LOW_PORT_FROM}..${LOW_PORT_TO}`);
}

/** A port free right now, from the kernel (ephemeral range): for a server the test binds once, soon. */
export function freePort(): number {
  const probe = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => new Response("") });
  const p = probe.port!;
  void probe.stop(true);
  return p;
}
