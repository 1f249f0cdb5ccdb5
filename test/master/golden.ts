// Data-driven situations for decide, in the manner of etcd raft's testdata/*.txt: each case is an
// input block (a config and a sequence of ticks, each a hand-made observation), a `----` line, and
// the expected rendering (every tick's views, memory and plan with its reasons). The rendering is
// regenerated with JORM_GOLDEN_UPDATE=1, so a rule change shows up as a reviewed diff of every
// situation it touches.
//
// Input grammar (one directive per line; `#` at the start of a line outside a tick is a comment):
//   run <name> [configKey=value ...]      starts a case; values are numbers, true/false or words;
//                                         pooltool=<sendWaitMs>/<recvWaitMs> turns PoolTool on
//   set #<id> <memoryField>=<value> ...   changes a runner's memory before the next tick
//   tick <atMs> [fromMs=N] [majority=N] [acts=ok|fail|none]
//                                         one observation at atMs, decided with now = atMs; its
//                                         plan's outcomes are then applied (default: all succeed)
//   r<id> <kind> [h=N] [logs=E.S,E.S|logs=] [pid=N] [since=N] [active=S] [sub=S] [frozen=B]
//          [restarts=N] [exit=N [result=S] [ran=ms]] [unit=none] [extra]
//                                         one runner of the tick before (kinds as fixtures.ts);
//                                         `extra` is a unit beyond cnt_runners (no REST asked)
//   part                                  partingFences for the last tick's views and signer
//   strip <atMs>                          boundaryStrip on the memory as it is now
// Outputs end at the first blank line, so a rendering never contains one.

import { applyOutcomes } from "../../src/master/memory.ts";
import { boundaryStrip, decide, emptyMemory, partingFences } from "../../src/master/decide.ts";
import type { ResolvedConfig } from "../../src/config/types.ts";
import type { UnitState } from "../../src/ports.ts";
import type { Action, Memory, Outcome, RunnerObs, RunnerView } from "../../src/master/types.ts";
import { SETTINGS, config, observation, pending, runner, type RunnerSpec } from "./fixtures.ts";

export interface GoldenCase {
  /** The input lines (comments included), exactly as in the file */
  input: string[];
  /** The expected output lines as in the file */
  expected: string[];
  /** 1-based line of the `run` directive, for messages */
  line: number;
  name: string;
}

/** Splits a testdata file into cases. Lines between cases (blank ones) are dropped and rewritten. */
export function parseGolden(text: string): GoldenCase[] {
  const lines = text.split("\n");
  const cases: GoldenCase[] = [];
  let i = 0;
  while (i < lines.length) {
    while (i < lines.length && lines[i]!.trim() === "") i++;
    if (i >= lines.length) break;
    const input: string[] = [];
    let runLine = 0;
    while (i < lines.length && lines[i] !== "----") {
      if (lines[i]!.startsWith("run ") && runLine === 0) runLine = i + 1;
      input.push(lines[i]!);
      i++;
    }
    if (i >= lines.length) throw new Error(`case at line ${runLine || i}: no "----" line`);
    i++; // ----
    const expected: string[] = [];
    while (i < lines.length && lines[i]!.trim() !== "") expected.push(lines[i++]!);
    const name = input.find((l) => l.startsWith("run "))?.split(/\s+/)[1] ?? `line ${runLine}`;
    cases.push({ input, expected, line: runLine, name });
  }
  return cases;
}

export function formatGolden(cases: readonly { input: string[]; output: string[] }[]): string {
  return cases.map((c) => [...c.input, "----", ...c.output].join("\n")).join("\n\n") + "\n";
}

// --- Rendering -------------------------------------------------------------------------------

function fmt(v: unknown): string {
  if (v === null || v === undefined) return "-";
  if (Array.isArray(v)) return `[${v.map(fmt).join(" ")}]`;
  if (typeof v === "object") {
    const entries = Object.entries(v as Record<string, unknown>);
    return `{${entries.map(([k, x]) => `${k}=${fmt(x)}`).join(" ")}}`;
  }
  return String(v);
}

/** key=value for every field but the ones named, in the object's own order: a field added later
 *  shows up in the rendering without touching this file. */
function fields(o: object, skip: readonly string[]): string {
  return Object.entries(o)
    .filter(([k]) => !skip.includes(k))
    .map(([k, v]) => `${k}=${fmt(v)}`)
    .join(" ");
}

function renderView(v: RunnerView): string {
  return `  r${v.id} ${v.cap} ${fields(v, ["id", "cap"])}`;
}

function renderAction(a: Action): string {
  const who = "id" in a ? ` r${a.id}` : "";
  const rest = fields(a, ["kind", "id", "reason", "rule"]);
  // The rule that planned it, first: a rule's change shows up as a diff of the actions it tags.
  const rule = a.rule ? `[${a.rule}] ` : "";
  return `${rule}${a.kind}${who}${rest ? ` ${rest}` : ""}: ${a.reason}`;
}

function renderMemory(m: Memory): string[] {
  const out = [`  ${fields(m, ["runners"])}`];
  for (const [id, r] of Object.entries(m.runners)) out.push(`  r${id} ${fields(r, [])}`);
  return out;
}

// --- Running ---------------------------------------------------------------------------------

const KINDS = ["holder", "standby", "booting", "dead", "hang", "stopped", "frozen", "busy"] as const;

function parseValue(s: string): unknown {
  if (s === "true") return true;
  if (s === "false") return false;
  if (s === "null" || s === "-") return null;
  if (/^-?\d+(\.\d+)?$/.test(s)) return Number(s);
  return s;
}

function parseArgs(tokens: readonly string[]): Map<string, string> {
  const m = new Map<string, string>();
  for (const t of tokens) {
    const eq = t.indexOf("=");
    if (eq < 0) m.set(t, "");
    else m.set(t.slice(0, eq), t.slice(eq + 1));
  }
  return m;
}

function parseConfig(args: Map<string, string>): ResolvedConfig {
  const over: Record<string, unknown> = {};
  for (const [k, v] of args) {
    if (k === "pooltool") {
      const [send, recv] = v.split("/").map(Number);
      over.pooltool = { poolId: "p", userId: "u", genesis: "g", sendWaitMs: send, recvWaitMs: recv ?? 30_000, endpTip: "http://x", endpStats: "http://y" };
    } else over[k] = parseValue(v);
  }
  const base = config();
  for (const k of Object.keys(over)) if (!(k in base)) throw new Error(`unknown config key ${k}`);
  return config(over as Partial<ResolvedConfig>);
}

function parseRunner(line: string): RunnerObs {
  const [head, kind, ...rest] = line.trim().split(/\s+/);
  const id = Number(head!.slice(1));
  if (!KINDS.includes(kind as (typeof KINDS)[number])) throw new Error(`unknown runner kind ${kind}`);
  const a = parseArgs(rest);
  const spec: RunnerSpec = { kind: kind as RunnerSpec["kind"] };
  if (a.has("h")) spec.height = Number(a.get("h"));
  if (a.has("logs")) {
    const v = a.get("logs")!;
    spec.logs = v === "" ? [] : v.split(",").map((es) => {
      const [e, s] = es.split(".").map(Number);
      return pending(e!, s!);
    });
  }
  const u: Partial<UnitState> = {};
  if (a.has("pid")) u.mainPid = Number(a.get("pid"));
  if (a.has("since")) u.sinceMs = parseValue(a.get("since")!) as number | null;
  if (a.has("active")) u.activeState = a.get("active") as UnitState["activeState"];
  if (a.has("sub")) u.subState = a.get("sub")!;
  if (a.has("frozen")) u.frozen = parseValue(a.get("frozen")!) as boolean | null;
  if (a.has("restarts")) u.restarts = Number(a.get("restarts"));
  // How the last main process ended: exit=N (its exit code), result=S (systemd's Result), ran=ms
  if (a.has("exit")) {
    const status = Number(a.get("exit"));
    u.lastExit = { result: a.get("result") ?? (status === 0 ? "success" : "exit-code"), code: "exited", status, ranMs: a.has("ran") ? Number(a.get("ran")) : null };
  }
  spec.unit = u;
  let o = runner(id, spec);
  if (a.get("unit") === "none") o = { ...o, unit: null };
  if (a.has("extra")) o = { ...o, stats: null, leaders: null, logs: null };
  for (const k of a.keys()) {
    if (!["h", "logs", "pid", "since", "active", "sub", "frozen", "restarts", "exit", "result", "ran", "unit", "extra"].includes(k)) throw new Error(`unknown runner field ${k}`);
  }
  return o;
}

function outcomes(plan: { fences: Action[]; promote: Action | null; other: Action[] }, ok: boolean): Outcome[] {
  return [...plan.fences, ...(plan.promote ? [plan.promote] : []), ...plan.other].map((action) => ({
    action,
    ok,
    detail: ok ? "ok" : "failed",
    ...(action.kind === "promote" && ok ? { leaderId: 1 } : {}),
  }));
}

/** Runs one case's input and returns its rendering. */
export function runGolden(input: readonly string[]): string[] {
  const out: string[] = [];
  let cfg: ResolvedConfig | null = null;
  let memory: Memory = emptyMemory();
  let last: { views: RunnerView[]; memory: Memory } | null = null;
  type Tick = { atMs: number; args: Map<string, string>; runners: RunnerObs[] };
  const ticks: Tick[] = [];
  let pending_: Tick | null = null;

  const flush = () => {
    if (!pending_ || !cfg) return;
    const t = pending_;
    pending_ = null;
    const over: Parameters<typeof observation>[2] = {};
    if (t.args.has("fromMs")) over.fromMs = Number(t.args.get("fromMs"));
    if (t.args.has("majority")) over.majorityMax = Number(t.args.get("majority"));
    const obs = observation(t.atMs, t.runners, over);
    const r = decide(obs, memory, cfg, t.atMs);
    const clock = SETTINGS;
    const epoch = Math.floor(t.atMs / (clock.slotDurationMs * clock.slotsPerEpoch));
    const slot = Math.floor(t.atMs / clock.slotDurationMs) % clock.slotsPerEpoch;
    out.push(`tick ${t.atMs} (epoch ${epoch} slot ${slot})`);
    out.push("views:");
    for (const v of r.views) out.push(renderView(v));
    out.push("memory:");
    out.push(...renderMemory(r.memory));
    out.push("plan:");
    for (const a of r.plan.fences) out.push(`  fence ${renderAction(a)}`);
    if (r.plan.promote) out.push(`  ${renderAction(r.plan.promote)}`);
    for (const a of r.plan.other) out.push(`  other ${renderAction(a)}`);
    for (const n of r.plan.notes) out.push(`  note: ${n}`);
    for (const [id, b] of Object.entries(r.plan.startBackoff ?? {})) out.push(`  start backoff r${id}: next start waits ${b.waitMs / 1000} s: ${b.why}`);
    out.push(`  wake ${r.plan.wakeAtMs} (+${r.plan.wakeAtMs - t.atMs})`);
    const acts = t.args.get("acts") ?? "ok";
    if (acts === "none") memory = r.memory;
    else if (acts === "ok" || acts === "fail") memory = applyOutcomes(r.memory, outcomes(r.plan, acts === "ok"), t.atMs);
    else throw new Error(`acts=${acts}: not ok, fail or none`);
    last = { views: r.views, memory: r.memory };
    ticks.push(t);
  };

  for (const raw of input) {
    const line = raw.trim();
    if (line === "") continue;
    const [cmd, ...rest] = line.split(/\s+/);
    if (/^r\d+$/.test(cmd!)) {
      if (!pending_) throw new Error(`${line}: a runner line outside a tick`);
      pending_.runners.push(parseRunner(line));
      continue;
    }
    if (line.startsWith("#")) continue;
    flush();
    switch (cmd) {
      case "run":
        cfg = parseConfig(parseArgs(rest.slice(1)));
        break;
      case "tick":
        pending_ = { atMs: Number(rest[0]), args: parseArgs(rest.slice(1)), runners: [] };
        break;
      case "set": {
        const id = Number(rest[0]!.replace(/^r/, ""));
        const m = memory.runners[id];
        if (!m) throw new Error(`${line}: no memory of runner ${id} yet`);
        const copy = { ...m } as Record<string, unknown>;
        for (const [k, v] of parseArgs(rest.slice(1))) {
          if (!(k in copy)) throw new Error(`${line}: no memory field ${k}`);
          copy[k] = parseValue(v);
        }
        memory = { ...memory, runners: { ...memory.runners, [id]: copy as unknown as typeof m } };
        out.push(`set r${id} ${rest.slice(1).join(" ")}`);
        break;
      }
      case "part": {
        if (!last) throw new Error("part before any tick");
        const l = last as { views: RunnerView[]; memory: Memory };
        out.push("parting fences:");
        const fences = partingFences(l.views, l.memory.signer);
        if (fences.length === 0) out.push("  (none)");
        for (const a of fences) out.push(`  ${renderAction(a)}`);
        break;
      }
      case "strip": {
        const at = Number(rest[0]);
        out.push(`strip at ${at}:`);
        const acts = boundaryStrip(memory, SETTINGS, at);
        if (acts.length === 0) out.push("  (none)");
        for (const a of acts) out.push(`  ${renderAction(a)}`);
        break;
      }
      default:
        throw new Error(`unknown directive: ${line}`);
    }
  }
  flush();
  if (!cfg) throw new Error("no run line");
  return out;
}
