// What both end-to-end tests (systemd.e2e.ts, cluster.e2e.ts) do the same way: run commands in the
// user manager's environment, sample every runner's /leaders on a fixed period, wait for a sample,
// keep faults away from epoch boundaries, read log tails and write drop-ins.
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

export interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** run / must / systemctl in the user manager's environment (`env`), each killed at its deadline. */
export function commands(env: Record<string, string>) {
  async function run(argv: string[], timeoutMs = 60_000, extraEnv: Record<string, string> = {}): Promise<Run> {
    const proc = Bun.spawn(argv, { env: { ...env, ...extraEnv }, stdout: "pipe", stderr: "pipe", stdin: "ignore" });
    const timer = setTimeout(() => proc.kill("SIGKILL"), timeoutMs);
    const [code, stdout, stderr] = await Promise.all([proc.exited, new Response(proc.stdout).text(), new Response(proc.stderr).text()]);
    clearTimeout(timer);
    return { code, stdout, stderr };
  }
  async function must(argv: string[], timeoutMs = 60_000, extraEnv: Record<string, string> = {}): Promise<string> {
    const r = await run(argv, timeoutMs, extraEnv);
    if (r.code !== 0) throw new Error(`${argv.join(" ")} exited ${r.code}:\n${r.stdout}\n${r.stderr}`);
    return r.stdout;
  }
  const systemctl = (...args: string[]) => run(["systemctl", "--user", ...args], 20_000);
  return { run, must, systemctl };
}

/** How many leader ids a runner's REST lists (what "holds the key" means here); null: no answer. */
export async function leaderCount(port: number, timeoutMs: number): Promise<number | null> {
  try {
    const res = await fetch(`http://127.0.0.1:${port}/api/v0/leaders`, { signal: AbortSignal.timeout(timeoutMs) });
    if (res.status !== 200) return null;
    const body: unknown = await res.json();
    return Array.isArray(body) ? body.length : null;
  } catch {
    return null;
  }
}

/** Takes a sample every `periodMs` (stamped when its requests had all returned) until stopped. */
export class Sampler<S extends { t: number }> {
  readonly samples: S[] = [];
  private stopped = false;
  private done: Promise<void> = Promise.resolve();
  constructor(
    private readonly take: () => Promise<Omit<S, "t">>,
    private readonly periodMs: number,
  ) {}

  start(): void {
    this.done = (async () => {
      while (!this.stopped) {
        const began = Date.now();
        const s = await this.take();
        this.samples.push({ ...s, t: Date.now() } as S);
        await Bun.sleep(Math.max(0, this.periodMs - (Date.now() - began)));
      }
    })();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.done;
  }

  /** The first sample after `fromMs` that satisfies `ok`, waiting for it up to `timeoutMs`. */
  async first(fromMs: number, ok: (s: S) => boolean, timeoutMs: number): Promise<S | null> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const hit = this.samples.find((s) => s.t >= fromMs && ok(s));
      if (hit) return hit;
      if (Date.now() > deadline) return null;
      await Bun.sleep(this.periodMs / 2);
    }
  }

  between(fromMs: number, toMs: number): S[] {
    return this.samples.filter((s) => s.t >= fromMs && s.t <= toMs);
  }

  latest(): S | undefined {
    return this.samples[this.samples.length - 1];
  }
}

export interface EpochQuiet {
  block0Ms: number;
  epochMs: number;
  /** No fault this soon after a boundary (schedule computation) */
  afterMs: number;
  /** Nor this soon before one (the hand-out) */
  beforeMs: number;
}

/** Waits until the next `needMs` are clear of an epoch boundary's hand-out and schedule computation. */
export async function awayFromBoundary(q: EpochQuiet, needMs: number): Promise<void> {
  for (;;) {
    const intoEpoch = (Date.now() - q.block0Ms) % q.epochMs;
    if (intoEpoch >= q.afterMs && q.epochMs - intoEpoch >= q.beforeMs + needMs) return;
    await Bun.sleep(200);
  }
}

/** The last lines of a log, or a note that it is not there. */
export function tail(file: string, lines: number): string {
  try {
    return readFileSync(file, "utf8").split("\n").slice(-lines).join("\n");
  } catch {
    return `(no ${file})`;
  }
}

/** A drop-in file, saying which test wrote it. */
export function writeDropIn(path: string, lines: string[], writer: string): void {
  mkdirSync(join(path, ".."), { recursive: true });
  writeFileSync(path, `# written by ${writer}\n${lines.join("\n")}\n`);
}
