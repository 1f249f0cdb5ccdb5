import { defineCommand } from "citty";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { ConfigError, UserError } from "../errors.ts";
import { confirmSteps, terminalPrompt } from "../ui/confirm.ts";

// The simulator as processes: a jormungandr-compatible node, a fake PoolTool, the world file they
// share and the audit of their common journal. Everything is loaded lazily: `sim node` starts as
// fast as a real node would.

const node = defineCommand({
  meta: {
    name: "node",
    description:
      "Run ONE simulated Jormungandr v0.8.14 node in real time, taking jormungandr's own flags:\n" +
      "  --config FILE  --rest-listen HOST:PORT  --storage DIR  --secret FILE (repeatable)  --genesis-block-hash HEX\n" +
      "(other jormungandr flags are accepted and ignored, with one note on stderr). Serves /api/v0 like the node,\n" +
      "plus /sim/state, /sim/journal and POST /sim/fault {\"kind\":\"crash|stuck|restHang|rest500|freeze|thaw|slowBoot|slowSchedule\"}.\n" +
      "The world (chain parameters, boot and schedule timings) is the sim-world.yaml beside --config, or $JORM_SIM_WORLD;\n" +
      "the node appends to the world's journal. SIGTERM exits gracefully; SIGSTOP/SIGCONT act as on a real node.\n" +
      "Drop-in under systemd: jormungandr_runner_N → a wrapper `#!/bin/sh\\nexec jorm-master sim node \"$@\"`;\n" +
      "$JORM_SIM_NODE_VERSION in the wrapper makes it another build (--version, /node/stats report it).\n" +
      "Example: jorm-master sim node --config /etc/cardano/jorm_runner_0.yaml --rest-listen 127.0.0.1:3100",
  },
  async run({ rawArgs }) {
    const [{ parseNodeFlags, startSimNode }, { nodeVersion }] = await Promise.all([import("../sim/process.ts"), import("../sim/node.ts")]);
    const flags = parseNodeFlags(rawArgs);
    if (flags.version) {
      process.stdout.write(`${flags.version === "full" ? nodeVersion() : "9ca427ef152aa2a17c6c47417f1ca6f070f9e9c5"}\n`);
      return;
    }
    if (flags.ignored.length > 0) {
      process.stderr.write(`jorm-master sim node: simulated node, ignoring ${[...new Set(flags.ignored)].join(", ")}\n`);
    }
    const running = startSimNode(flags);
    const graceful = () => running.node.terminate(running.world.shutdownMs);
    process.on("SIGTERM", graceful);
    process.on("SIGINT", graceful);
    process.stderr.write(
      `jorm-master sim node: runner ${running.node.runner} (incarnation ${running.node.incarnation}) on ${running.url}, world ${running.world.file}\n`,
    );
    process.exit(await running.exited);
  },
});

const int = (name: string, value: string | undefined, fallback: number, min = 0): number => {
  if (value === undefined || value === "") return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min) throw new UserError(`--${name}: expected an integer ≥ ${min}, got ${JSON.stringify(value)}`, 64);
  return n;
};

const worldInit = defineCommand({
  meta: {
    name: "init",
    description:
      "Write DIR/sim-world.yaml: the chain every simulated node of a deployment shares (block0 now, 1 s slots,\n" +
      "60 slots per epoch, 5 leader slots per epoch by default) and the node timings, plus DIR/jormungandr-sim, a\n" +
      "drop-in jormungandr wrapper (exec jorm-master sim node \"$@\") to point jormungandr_runner_N at.\n" +
      "Refuses to overwrite without --force.\n" +
      "Example: jorm-master sim world init /etc/cardano --slot-ms 1000 --slots-per-epoch 120 --density 10",
  },
  args: {
    dir: { type: "positional", description: "Directory of the world (created if missing)", required: true },
    "slot-ms": { type: "string", description: "Slot duration in ms, whole seconds (default 1000)" },
    "slots-per-epoch": { type: "string", description: "Slots per epoch (default 60)" },
    density: { type: "string", description: "The pool's leader slots per epoch (default 5)" },
    seed: { type: "string", description: "Seed of the chain and the schedule (default 1)" },
    "active-slot-coeff": { type: "string", description: "Share of slots with a network block (default 0.5)" },
    "bootstrap-ms": { type: "string", description: "Bootstrapping phase of a booting node (default 3000)" },
    "compute-ms": { type: "string", description: "Schedule computation time with keys held (default 1000)" },
    block0: { type: "string", description: "block0 time, RFC 3339 (default: now, whole seconds)" },
    force: { type: "boolean", description: "Overwrite an existing world file (asks first; --yes without a terminal)", default: false },
    yes: { type: "boolean", description: "With --force: overwrite without asking", default: false },
  },
  async run({ args }) {
    const { renderWorld, parseWorld, renderWrapper, selfCommand, WORLD_FILE, WRAPPER_FILE } = await import("../sim/worldfile.ts");
    const dir = resolve(String(args.dir));
    const file = join(dir, WORLD_FILE);
    const exists = existsSync(file);
    if (exists && !args.force) throw new UserError(`${file} already exists; add --force to overwrite it`);
    const block0 = args.block0 === undefined ? Date.now() : Date.parse(String(args.block0));
    if (Number.isNaN(block0)) throw new UserError(`--block0: expected an RFC 3339 time, got ${JSON.stringify(args.block0)}`, 64);
    const coeff = args["active-slot-coeff"] === undefined ? 0.5 : Number(args["active-slot-coeff"]);
    const text = renderWorld({
      block0TimeMs: block0,
      slotMs: int("slot-ms", args["slot-ms"], 1000, 1000),
      slotsPerEpoch: int("slots-per-epoch", args["slots-per-epoch"], 60, 2),
      seed: int("seed", args.seed, 1),
      density: int("density", args.density, 5),
      activeSlotCoeff: coeff,
      bootstrapMs: int("bootstrap-ms", args["bootstrap-ms"], 3000),
      computeMs: int("compute-ms", args["compute-ms"], 1000),
    });
    try {
      parseWorld(text, file);
    } catch (error) {
      if (error instanceof ConfigError) throw new UserError(error.message.replace(`${file}: `, "invalid world: "), 64);
      throw error;
    }
    if (exists) await confirmSteps([`replace ${file} (every node of this world starts a new chain)`], args.yes, terminalPrompt());
    mkdirSync(dir, { recursive: true });
    writeFileSync(file, text);
    const wrapper = join(dir, WRAPPER_FILE);
    writeFileSync(wrapper, renderWrapper(selfCommand()), { mode: 0o755 });
    process.stdout.write(
      `Wrote ${file} and ${wrapper}\n` +
        `Run a node: JORM_SIM_WORLD=${dir} ${wrapper} --rest-listen 127.0.0.1:3100\n` +
        `Under systemd: ln -s ${wrapper} /usr/local/bin/jormungandr_runner_0; a node finds its world as\n` +
        `${WORLD_FILE} beside its --config file, or through $JORM_SIM_WORLD\n`,
    );
  },
});

const world = defineCommand({
  meta: { name: "world", description: "Manage the world file simulated nodes share. Example: jorm-master sim world init DIR" },
  subCommands: { init: worldInit },
});

// A deliberate bug, so the build test can check that a stack trace from the compiled binary points
// at the TypeScript source (the embedded source map), not at minified code.
const crashCmd = defineCommand({
  meta: { name: "crash", description: "Throw an internal error on purpose (tests the source map)", hidden: true },
  run() {
    throw new Error("deliberate crash for the source-map check");
  },
});

const auditCmd = defineCommand({
  meta: {
    name: "audit",
    description:
      "Audit the journal of a multi-process simulated run: scheduled, produced, double-produced (must be 0), missed,\n" +
      "unproducible slots with reasons, the time two runners could sign inside the slot windows at once, and the\n" +
      "windows in which two could sign at all (one after the other included).\n" +
      "Exits 1 when any slot was double-produced or two processes could sign a slot inside its window.\n" +
      "Example: jorm-master sim audit --world /etc/cardano --guard-ms 2000 --margin-ms 1000 --json",
  },
  args: {
    world: { type: "string", description: "Directory (or file) of the world", required: true },
    from: { type: "string", description: "Start, ms since epoch or RFC 3339 (default: first journal entry)" },
    to: { type: "string", description: "End (default: last journal entry)" },
    "guard-ms": { type: "string", description: "Window before each slot (default 0)" },
    "margin-ms": { type: "string", description: "Window after each slot (default 0)" },
    json: { type: "boolean", description: "One JSON object, per-slot verdicts included", default: false },
  },
  async run({ args }) {
    const [{ loadWorld, locateWorld }, { readJournalFile }, { audit }, { Chain }] = await Promise.all([
      import("../sim/worldfile.ts"),
      import("../sim/journal.ts"),
      import("../sim/audit.ts"),
      import("../sim/chain.ts"),
    ]);
    const w = loadWorld(locateWorld(undefined, { JORM_SIM_WORLD: String(args.world) }));
    const entries = readJournalFile(w.journalPath);
    if (entries.length === 0) throw new UserError(`${w.journalPath}: no journal entries yet`);
    const time = (name: string, v: string | undefined, fallback: number) => {
      if (v === undefined) return fallback;
      const n = /^\d+$/.test(v) ? Number(v) : Date.parse(v);
      if (Number.isNaN(n)) throw new UserError(`--${name}: expected ms or an RFC 3339 time, got ${JSON.stringify(v)}`, 64);
      return n;
    };
    const fromMs = time("from", args.from, entries[0]!.t);
    const toMs = time("to", args.to, entries[entries.length - 1]!.t);
    const report = audit(entries, new Chain(w.chain), {
      fromMs,
      toMs,
      guardMs: int("guard-ms", args["guard-ms"], 0),
      marginMs: int("margin-ms", args["margin-ms"], 0),
    });
    // The guarantee failed: a slot signed twice, or two processes able to sign one inside its window
    // (at once, or one after the other).
    if (report.doubleProduced > 0 || report.signOverlapMs > 0 || report.sharedWindows > 0) process.exitCode = 1;
    if (args.json) {
      process.stdout.write(`${JSON.stringify({ fromMs, toMs, ...report })}\n`);
      return;
    }
    const reasons = Object.entries(report.unproducibleReasons).map(([k, v]) => `${k} ${v}`).join(", ");
    process.stdout.write(
      `${new Date(fromMs).toISOString()} → ${new Date(toMs).toISOString()}\n` +
        `scheduled ${report.scheduled}, produced ${report.produced}, double-produced ${report.doubleProduced}, missed ${report.missed}, ` +
        `unproducible ${report.unproducible}${reasons ? ` (${reasons})` : ""}\n` +
        `coverage ${report.coveragePct.toFixed(1)} %, two able to sign a slot inside its window ${report.signOverlapMs} ms at once, ` +
        `in ${report.sharedWindows} window(s) at all ` +
        `(two holding the key, schedule or not: ${report.overlapMs} ms in slot windows, ${report.boundaryOverlapMs} ms at boundaries)\n`,
    );
  },
});

const pooltool = defineCommand({
  meta: {
    name: "pooltool",
    description:
      "A fake PoolTool on loopback: GET …/stats.json → {\"majoritymax\": N, …} from the world's network tip;\n" +
      "GET|POST …/sharemytip?mytip=N recorded in the world's journal; POST …/sendlogs (slot uploads) checked\n" +
      "against the world's schedule and the hash sent the epoch before (a mismatch is a 400).\n" +
      "Example: jorm-master sim pooltool --listen 127.0.0.1:8081 --world /etc/cardano",
  },
  args: {
    listen: { type: "string", description: "HOST:PORT (default 127.0.0.1:8081)", default: "127.0.0.1:8081" },
    world: { type: "string", description: "Directory (or file) of the world", required: true },
    "lag-blocks": { type: "string", description: "Majority max behind the tip by this many blocks (default 0)" },
  },
  async run({ args }) {
    const [{ loadWorld, locateWorld }, { FileJournal }, { serveFakePoolTool }, { parseListen }] = await Promise.all([
      import("../sim/worldfile.ts"),
      import("../sim/journal.ts"),
      import("../sim/pooltool.ts"),
      import("../sim/process.ts"),
    ]);
    const w = loadWorld(locateWorld(undefined, { JORM_SIM_WORLD: String(args.world) }));
    const { hostname, port } = parseListen(String(args.listen));
    const fake = serveFakePoolTool({
      chain: w.chain,
      journal: new FileJournal(w.journalPath),
      hostname,
      port,
      lagBlocks: int("lag-blocks", args["lag-blocks"], 0),
    });
    process.stderr.write(`jorm-master sim pooltool: ${fake.url}/stats/stats.json, ${fake.url}/v0/sharemytip and ${fake.url}/v0/sendlogs\n`);
    await new Promise<void>((done) => {
      process.once("SIGTERM", done);
      process.once("SIGINT", done);
    });
    fake.stop();
  },
});

export default defineCommand({
  meta: {
    name: "sim",
    hidden: true,
    description:
      "The node simulator as processes (for end-to-end runs without Jormungandr): `sim node` is a drop-in\n" +
      "jormungandr, `sim pooltool` a fake PoolTool, `sim world init` writes the chain they share and\n" +
      "`sim audit` reports what the runners produced. Example: jorm-master sim world init /tmp/world",
  },
  subCommands: { node, world, audit: auditCmd, pooltool, crash: crashCmd },
});
