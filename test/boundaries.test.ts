// Layers point down only. Every import between top-level parts of src/ must be an edge listed here;
// a new one is a design decision, made by editing this list (and saying why), never by accident.
import { expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, relative, resolve } from "node:path";

const SRC = resolve(import.meta.dir, "../src");

/**
 * Who may import whom, bottom to top. A part is a folder of src/ or a file at its top (errors.ts →
 * "errors"). Imports inside one part are free.
 */
const ALLOWED: Record<string, readonly string[]> = {
  // the bottom: no imports from src/
  errors: [],
  version: [],
  ports: [],
  ui: ["errors"],
  // configuration and logging
  config: ["errors"],
  log: ["errors"],
  // the edges: node REST, systemd, PoolTool, and the simulator that stands in for them
  node: ["errors", "ports"],
  systemd: ["config", "errors", "ports"],
  sim: ["config", "errors", "node", "ports"],
  // multi-host mode (in progress): etcd and the signer election
  cluster: ["config", "errors", "node", "ports"],
  // the master: observe → decide → act, and the loop
  master: ["config", "errors", "node", "ports"],
  // above the master: what reads its ticks, and what prepares a runner
  metrics: ["config", "errors", "master", "node"],
  // PoolTool: its client, and the slot uploads fed by each tick
  pooltool: ["config", "master", "node", "ports"],
  alerts: ["config", "errors", "master", "node", "ports"],
  // the daemon's control socket, its event log, and `leaders` which reads both
  control: ["config", "master"],
  history: ["alerts", "config", "errors", "master", "ui"],
  leaders: ["alerts", "config", "control", "history", "master", "node", "ui"],
  status: ["config", "master", "node", "ports", "ui"],
  // the operator's commands through the daemon: hold/release/switchover, the rolling upgrade
  ops: ["config", "control", "errors", "master", "ui"],
  "log-summary": ["master", "ports"],
  runner: ["config", "errors", "master", "node", "systemd"],
  // the lab: the master against the simulator (property tests, benchmarks, the demo)
  lab: ["config", "master", "node", "ports", "sim"],
  // the daemon object and its port factory; install
  // cluster: the daemon holds the etcd signer lease and feeds decide what it allows (issue 13)
  daemon: ["alerts", "cluster", "config", "errors", "master", "metrics", "node", "pooltool", "ports", "runner", "systemd", "version"],
  install: ["config", "errors", "systemd", "ui"],
  // the commands, and the CLI on top
  // cluster: `status` reads who holds the etcd signer key
  commands: ["alerts", "cluster", "config", "control", "daemon", "errors", "history", "install", "lab", "leaders", "log", "log-summary", "master", "metrics", "node", "ops", "pooltool", "ports", "runner", "sim", "status", "systemd", "ui", "version"],
  // argument checking (unknown flags, "did you mean") for every command
  "cli-args": [],
  cli: ["cli-args", "commands", "errors", "log", "version"],
};

/** Files that still break the layering, each with where it goes. Remove the entry when it moves. */
const PENDING: Record<string, readonly string[]> = {};

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? sources(p) : p.endsWith(".ts") ? [p] : [];
  });
}

const part = (path: string, root = SRC): string => {
  const [first, ...rest] = relative(root, path).split("/");
  return rest.length === 0 ? first!.replace(/\.ts$/, "") : first!;
};

/** Every relative import (static, dynamic, re-export) of every file under root, as part edges. */
function edges(root = SRC): { from: string; to: string; file: string }[] {
  const out: { from: string; to: string; file: string }[] = [];
  for (const file of sources(root)) {
    const text = readFileSync(file, "utf8");
    for (const m of text.matchAll(/(?:\bfrom\s*|\bimport\s*\(?\s*)["'](\.[^"']*)["']/g)) {
      const target = resolve(dirname(file), m[1]!);
      if (!target.startsWith(root + "/")) continue; // ../../systemd/*.service templates and the like
      const from = part(file, root);
      const to = part(target, root);
      if (from !== to) out.push({ from, to, file: relative(root, file) });
    }
  }
  return out;
}

const violations = (all: ReturnType<typeof edges>): string[] => [
  ...new Set(
    all
      .filter((e) => !(ALLOWED[e.from] ?? []).includes(e.to) && !(PENDING[e.file] ?? []).includes(e.to))
      .map((e) => `${e.file} imports ${e.to}/ (${e.from} → ${e.to} is not an allowed edge)`),
  ),
];

test("every import between parts of src/ is an allowed edge (layers point down only)", () => {
  const all = edges();
  expect(all.length).toBeGreaterThan(50); // the scan finds the imports
  expect(violations(all)).toEqual([]);
});

test("every part of src/ is placed in the list, and the list has no cycle", () => {
  const parts = new Set(sources(SRC).map((f) => part(f)));
  expect([...parts].filter((p) => !(p in ALLOWED))).toEqual([]);
  // Depth-first search over the allowed edges: a cycle would let layers point both ways.
  const state = new Map<string, "open" | "done">();
  const visit = (p: string, path: string[]): string | null => {
    if (state.get(p) === "done") return null;
    if (state.get(p) === "open") return [...path, p].join(" → ");
    state.set(p, "open");
    for (const q of ALLOWED[p] ?? []) {
      const c = visit(q, [...path, p]);
      if (c) return c;
    }
    state.set(p, "done");
    return null;
  };
  for (const p of Object.keys(ALLOWED)) expect(visit(p, [])).toBeNull();
});

test("the scan catches edges that point up, in every import form", () => {
  // The layout main had: the ports in master/, imported by node/ and sim/.
  const root = mkdtempSync(join(tmpdir(), "jm-bounds-"));
  try {
    mkdirSync(join(root, "master"));
    mkdirSync(join(root, "node"));
    mkdirSync(join(root, "sim"));
    writeFileSync(join(root, "master/ports.ts"), "export interface Clock {}\n");
    writeFileSync(join(root, "node/deadline.ts"), 'import type { Clock } from "../master/ports.ts";\n');
    writeFileSync(join(root, "sim/clock.ts"), 'export { type Clock } from "../master/ports.ts";\nconst x = await import("../master/ports.ts");\n');
    writeFileSync(join(root, "master/act.ts"), 'import { Clock } from "./ports.ts";\n');
    expect(violations(edges(root))).toEqual([
      "node/deadline.ts imports master/ (node → master is not an allowed edge)",
      "sim/clock.ts imports master/ (sim → master is not an allowed edge)",
    ]);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test("the pending exceptions are still needed (a moved file must leave the list)", () => {
  const all = edges();
  for (const [file, targets] of Object.entries(PENDING)) {
    for (const t of targets) expect(all.some((e) => e.file === file && e.to === t)).toBe(true);
  }
});
