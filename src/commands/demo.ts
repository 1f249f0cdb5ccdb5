import { defineCommand } from "citty";
import { z } from "zod";
import { EXIT_USAGE, UserError } from "../errors.ts";
import { masterOnWorld, simConfig } from "../lab/harness.ts";
import { signOverlapMs } from "../sim/audit.ts";
import type { MasterLog, TickReport } from "../master/loop.ts";
import { FailoverTimer, percentile } from "../lab/measure.ts";
import { epochClock } from "../master/schedule.ts";
import { testChainParams } from "../sim/chain.ts";
import { RealScheduler } from "../sim/clock.ts";
import { World, type Fault } from "../sim/world.ts";
import { formatDuration, redraw, renderTable } from "../ui/table.ts";

const argsSchema = z.object({
  runners: z.coerce.number().int().min(1).max(16),
  duration: z.coerce.number().positive().max(24 * 3600),
  faults: z.boolean(),
  json: z.boolean(),
  "key-mode": z.enum(["boot", "rest"]),
  density: z.coerce.number().int().min(1).max(59),
  seed: z.coerce.number().int().min(0),
});

/** Fault plan over the demo's duration, aimed at whoever signs at that moment. */
function faultPlan(durationMs: number): { atMs: number; fault: Fault; forMs?: number; label: string }[] {
  return [
    { atMs: 0.2 * durationMs, fault: { kind: "crash" }, label: "crash the signer (kill -9)" },
    { atMs: 0.4 * durationMs, fault: { kind: "restHang", on: true }, forMs: 8_000, label: "hang the signer's REST for 8 s" },
    { atMs: 0.6 * durationMs, fault: { kind: "freeze" }, forMs: 3_000, label: "SIGSTOP the signer for 3 s" },
    { atMs: 0.8 * durationMs, fault: { kind: "stuck", on: true }, forMs: 20_000, label: "stall the signer's chain for 20 s" },
  ];
}

export default defineCommand({
  meta: {
    name: "demo",
    description:
      "Watch the real master keep one signer among simulated runners, in real time.\n" +
      "Fast slots (1 s, 60 per epoch); at the end, the audit: scheduled, produced, double-produced.\n" +
      "--faults injects a crash, a REST hang, a SIGSTOP and a stalled chain into whoever signs.\n" +
      "Example: jorm-master demo --duration 90 --faults",
  },
  args: {
    runners: { type: "string", description: "Number of simulated runners", default: "3", valueHint: "N" },
    duration: { type: "string", description: "Seconds to run", default: "90", valueHint: "S" },
    faults: { type: "boolean", description: "Inject faults into the signer", default: false },
    json: { type: "boolean", description: "Print only the final audit, as one JSON object", default: false },
    "key-mode": { type: "string", description: "boot (--secret at start) or rest (passive start)", default: "boot" },
    density: { type: "string", description: "The pool's leader slots per 60-slot epoch", default: "8" },
    seed: { type: "string", description: "Chain seed", default: "7" },
  },
  async run({ args }) {
    const parsed = argsSchema.safeParse(args);
    if (!parsed.success) {
      const i = parsed.error.issues[0]!;
      throw new UserError(`demo: --${String(i.path[0])}: ${i.message}`, EXIT_USAGE);
    }
    const a = parsed.data;
    const durationMs = a.duration * 1000;
    const chain = testChainParams({ leaderSlotsPerEpoch: a.density, seed: a.seed });
    // Start 25 s into an epoch so the runners are warm before the first boundary hand-out.
    const epochMs = chain.slotDurationMs * chain.slotsPerEpoch;
    const nowMs = Date.now();
    const startMs = chain.block0TimeMs + Math.ceil((nowMs - chain.block0TimeMs) / epochMs) * epochMs + 25_000 - epochMs;
    const clock = new RealScheduler({ startMs });
    const world = new World({
      chain,
      runners: a.runners,
      clock,
      keyMode: a["key-mode"],
      boot: { PreparingStorage: 500, PreparingBlock0: 300, Bootstrapping: 3_000, StartingWorkers: 300 },
      scheduleComputeMs: 1_500,
      restartDelayMs: 1_000,
      restTimeoutMs: 300,
    });
    const config = simConfig(a.runners, {
      keyMode: a["key-mode"],
      loopPeriodMs: 250,
      restTimeoutMs: 300,
      slotGuardMs: 300,
      slotMarginMs: 300,
      eventActionMs: 4_000,
      startBeforeEventMs: 10_000,
      bootCatchUpMs: 15_000,
      maxBootMs: 60_000,
      maxOffset: 3,
    });
    const t0 = clock.now();
    const live = !a.json && process.stdout.isTTY === true;
    const events: string[] = [];
    const stamp = () => `${((clock.now() - t0) / 1000).toFixed(1).padStart(5)}s`;
    const say = (line: string) => {
      if (a.json) return;
      if (live) events.push(`${stamp()} ${line}`);
      else process.stdout.write(`${stamp()} ${line}\n`);
    };
    const log: MasterLog = { info: say, warn: say, error: (m) => say(`ERROR ${m}`), debug() {} };
    const lastAction = new Map<number, string>();
    let frameLines = 0;
    let lastReport: TickReport | null = null;
    const failover = new FailoverTimer();
    const failovers = failover.doneMs;
    const draw = () => {
      const r = lastReport;
      if (!live || !r) return;
      const settings = r.observation.settings;
      const ec = settings ? epochClock(settings) : null;
      const now = clock.now();
      const rows = [["runner", "unit", "state", "height", "keys", "events left", "next event", "last action"]];
      for (const v of r.views.filter((x) => x.id < a.runners)) {
        const m = r.memory.runners[v.id];
        const ahead = (m?.pendingSlots ?? []).filter((abs) => ec !== null && ec.slotStartMs(abs) > now);
        const next = ahead[0] !== undefined && ec ? ec.slotStartMs(ahead[0]) - now : null;
        const keys = v.frozen ? "frozen" : v.cap === "holder" || v.cap === "booting-holder" ? "KEY" : v.cap === "keyless" ? "-" : v.cap;
        rows.push([
          `#${v.id}${r.memory.signer === v.id ? " *" : ""}`,
          r.observation.runners.find((o) => o.id === v.id)?.unit?.activeState ?? "?",
          v.nodeState ?? (v.responsive ? "?" : "no answer"),
          v.height === null ? "-" : String(v.height),
          keys,
          String(ahead.length),
          formatDuration(next),
          lastAction.get(v.id) ?? "",
        ]);
      }
      const epoch = ec ? ec.epochAt(now) : null;
      const head = `jorm-master demo · ${a.runners} runners · key mode ${a["key-mode"]} · ${formatDuration(now - t0)} of ${formatDuration(durationMs)}${epoch !== null ? ` · epoch ${epoch}, next boundary in ${formatDuration(ec!.epochStartMs(epoch + 1) - now)}` : ""}`;
      const frame = [head, renderTable(rows), "", ...events.slice(-8)].join("\n");
      process.stdout.write(redraw(frameLines) + frame + "\n");
      frameLines = frame.split("\n").length;
    };
    const onTick = (r: TickReport) => {
      lastReport = r;
      for (const o of r.outcomes) if ("id" in o.action) lastAction.set(o.action.id, `${o.action.kind}${o.ok ? "" : " (failed)"}`);
      const done = failover.tick(r.memory.signer, clock.now());
      if (done) say(`failover done: #${done.from} → #${done.to} in ${done.ms} ms`);
    };

    // `ac` ends the demo; `daemonAc` is the running daemon's own, replaced when it is killed.
    const ac = new AbortController();
    let daemonAc = new AbortController();
    ac.signal.addEventListener("abort", () => daemonAc.abort(), { once: true });
    let master = masterOnWorld(world, config, { log, onTick });
    let running = master.run(daemonAc.signal);
    for (const id of world.ids) void world.services.start(id);
    if (a.faults) {
      for (const f of faultPlan(durationMs)) {
        clock.at(t0 + f.atMs, () => {
          const id = master.memory.signer;
          if (id === null) return say(`(fault skipped, no signer: ${f.label})`);
          say(`FAULT: ${f.label} (#${id})`);
          if (f.fault.kind !== "stuck") failover.faulted(id, clock.now());
          world.inject(id, f.fault);
          if (f.forMs !== undefined) {
            const undo: Fault | null =
              f.fault.kind === "freeze" ? { kind: "thaw" } : "on" in f.fault ? { ...f.fault, on: false } : null;
            if (undo) world.inject(id, undo, clock.now() + f.forMs);
          }
        });
      }
      // The daemon itself is killed once and comes back with no memory: it adopts what runs.
      const killAt = t0 + 0.5 * durationMs;
      clock.at(killAt, () => {
        say("FAULT: kill -9 the daemon; it comes back in 1 s with empty memory");
        daemonAc.abort();
        clock.at(clock.now() + 1_000, () => {
          if (ac.signal.aborted) return;
          daemonAc = new AbortController();
          master = masterOnWorld(world, config, { log, onTick });
          running = master.run(daemonAc.signal);
        });
      });
    }
    const timer = live ? setInterval(draw, 250) : null;
    await new Promise<void>((resolve) => clock.at(t0 + durationMs, resolve));
    ac.abort();
    if (timer) clearInterval(timer);
    draw();
    await running.catch(() => {});
    const toMs = clock.now();
    const { slots: _slots, ...audit } = world.audit({ fromMs: t0, toMs, guardMs: config.slotGuardMs, marginMs: config.slotMarginMs });
    const phys = signOverlapMs(world.journal.entries(), world.chain, { fromMs: t0, toMs, guardMs: config.slotGuardMs, marginMs: config.slotMarginMs });
    world.dispose?.();
    const summary = {
      scenario: a.faults ? "demo-faults" : "demo",
      scheduled: audit.scheduled,
      produced: audit.produced,
      double_produced: audit.doubleProduced,
      missed: audit.missed,
      unproducible: audit.unproducible,
      coverage_pct: Math.round(audit.coveragePct * 100) / 100,
      sign_overlap_ms: phys.overlapMs,
      shared_windows: phys.sharedWindows,
      failover_p50_ms: percentile(failovers, 50),
      failover_p99_ms: percentile(failovers, 99),
      wall_s: Math.round((toMs - t0) / 100) / 10,
    };
    if (a.json) {
      process.stdout.write(`${JSON.stringify(summary)}\n`);
    } else {
      process.stdout.write(
        [
          "",
          `audit over ${summary.wall_s} s: scheduled ${audit.scheduled}, produced ${audit.produced}, double-produced ${audit.doubleProduced}, ` +
            `missed ${audit.missed}, unproducible ${audit.unproducible}${audit.unproducible ? ` (${Object.entries(audit.unproducibleReasons).map(([k, v]) => `${k} ${v}`).join(", ")})` : ""}`,
          `coverage ${summary.coverage_pct} % of producible slots; two runners able to sign one slot: ${phys.overlapMs} ms at once, ${phys.sharedWindows} window(s) at all; failovers: ${failovers.length ? failovers.map((f) => `${f} ms`).join(", ") : "none"}`,
          "",
        ].join("\n"),
      );
    }
    process.exit(audit.doubleProduced === 0 && phys.overlapMs === 0 && phys.sharedWindows === 0 ? 0 : 1);
  },
});
