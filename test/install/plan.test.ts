import { describe, expect, test } from "bun:test";
import type { Manifest } from "../../src/install/manifest.ts";
import { layoutFor } from "../../src/install/layout.ts";
import { formatPlan, planInstall, planUninstall, sha256Hex, type Existing, type Found, type Op, type Plan, type Wanted } from "../../src/install/plan.ts";
import { configText, DEFAULT_NODE_CONFIG_TEMPLATE, wantedState } from "../../src/install/wanted.ts";

const HOME = "/home/op";
const layout = layoutFor("user", HOME, "op");
const HASH = `${"ab".repeat(32)}\n`;

function wanted(runners: number, extra: { jormungandr?: string | null; template?: string; unitTweak?: boolean } = {}): Wanted {
  return wantedState({
    layout,
    scope: "user",
    user: "op",
    createUser: false,
    configText: configText(null, runners, { scope: "user", user: "op", keyMode: null, layout }),
    jormungandr: extra.jormungandr === null ? null : { target: extra.jormungandr ?? "/opt/jormungandr", explicit: true },
    genesis: HASH,
    secret: "genesis: {}\n",
    nodeConfigTemplate: extra.template ?? DEFAULT_NODE_CONFIG_TEMPLATE,
    templateFromOperator: extra.template !== undefined,
    self: { kind: "launcher", content: "#!/bin/sh\nexec bun cli.ts \"$@\"\n" },
  }).wanted;
}

const nothing: Existing = { paths: {}, users: {}, manifest: null, units: { masterEnabled: false, masterActive: false } };

/** What exists after applying `plan` on top of `before` (the plan's effects, without any I/O). */
function afterApply(before: Existing, plan: Plan, sources: Record<string, string> = {}): Existing {
  const paths: Record<string, Found> = { ...before.paths };
  let manifest = before.manifest;
  let units = before.units;
  for (const op of plan.ops) {
    if (op.op === "mkdir") paths[op.path] = { kind: "dir" };
    if (op.op === "write") paths[op.path] = { kind: "file", sha256: sha256Hex(op.content), text: op.content };
    if (op.op === "copy") paths[op.path] = { kind: "file", sha256: sha256Hex(sources[op.source] ?? ""), text: null };
    if (op.op === "symlink") paths[op.path] = { kind: "symlink", target: op.target };
    if (op.op === "remove" || op.op === "rmdir") paths[op.path] = { kind: "missing" };
    if (op.op === "manifest") manifest = op.manifest;
    if (op.op === "systemctl" && units !== null) {
      const [verb, ...rest] = op.args;
      const master = rest.at(-1) === "jorm_master.service";
      if (master && verb === "enable") units = { masterEnabled: true, masterActive: rest.includes("--now") || units.masterActive };
      if (master && (verb === "start" || verb === "restart")) units = { ...units, masterActive: true };
      if (master && verb === "stop") units = { ...units, masterActive: false };
    }
  }
  return { ...before, paths, manifest, units };
}

const kinds = (ops: Op[]) => ops.map((o) => o.op);
const systemctlCalls = (ops: Op[]) => ops.flatMap((o) => (o.op === "systemctl" ? [o.args.join(" ")] : []));
const opFor = (ops: Op[], path: string) => ops.find((o) => "path" in o && o.path === path);
const unitPath = `${HOME}/.config/systemd/user/jorm_master.service`;
const runnerConfig = (id: number) => `${HOME}/.config/jorm-master/jorm_runner_${id}.yaml`;
const options = { force: false, start: true };

describe("planInstall", () => {
  const w = wanted(2);
  const first = planInstall(w, nothing, options);
  const installed = afterApply(nothing, first);

  test("fresh: dirs, files, symlinks, daemon-reload, enable --now, manifest", () => {
    expect(kinds(first.ops).slice(-4)).toEqual(["symlink", "systemctl", "systemctl", "manifest"]);
    expect(systemctlCalls(first.ops)).toEqual(["daemon-reload", "enable --now jorm_master.service"]);
    expect(opFor(first.ops, `${HOME}/.config/jorm-master/node_secret.yaml`)).toMatchObject({ op: "write", mode: 0o600, action: "create" });
    expect(opFor(first.ops, `${HOME}/.local/bin/jormungandr_runner_1`)).toMatchObject({ op: "symlink", target: "/opt/jormungandr" });
    // parents before children
    const dirs = first.ops.flatMap((o) => (o.op === "mkdir" ? [o.path] : []));
    for (const d of dirs) {
      const parent = d.slice(0, d.lastIndexOf("/"));
      if (dirs.includes(parent)) expect(dirs.indexOf(parent)).toBeLessThan(dirs.indexOf(d));
    }
  });

  test("the manifest records what was created, with hashes and runner ids", () => {
    const manifest = installed.manifest!;
    expect(manifest.runners).toBe(2);
    expect(manifest.entries.find((e) => e.path === runnerConfig(1))).toMatchObject({ type: "file", role: "node-config", runner: 1 });
    expect(manifest.entries.find((e) => e.path === unitPath)?.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(manifest.entries.filter((e) => e.role === "storage").map((e) => e.runner)).toEqual([0, 1]);
  });

  test("second run: nothing to do", () => {
    const second = planInstall(w, installed, options);
    expect(second.ops).toEqual([]);
    expect(formatPlan(second, "systemctl --user")).toStartWith("nothing to do");
  });

  test("a file the operator changed is kept with its diff; --force overwrites it", () => {
    const edited = structuredClone(installed);
    const original = (installed.paths[unitPath] as { text: string }).text;
    const text = original.replace("RestartSec=1", "RestartSec=5");
    edited.paths[unitPath] = { kind: "file", sha256: sha256Hex(text), text };
    const upgraded = wanted(2);
    const plan = planInstall(upgraded, edited, options);
    expect(plan.ops).toEqual([]);
    expect(plan.kept).toHaveLength(1);
    expect(plan.kept[0]!.why).toContain("changed since install; kept (pass --force to overwrite)");
    expect(plan.kept[0]!.diff).toContain("- RestartSec=5");
    expect(plan.kept[0]!.diff).toContain("+ RestartSec=1");
    const forced = planInstall(upgraded, edited, { ...options, force: true });
    expect(opFor(forced.ops, unitPath)).toMatchObject({ op: "write", action: "overwrite" });
    expect(systemctlCalls(forced.ops)).toEqual(["daemon-reload", "restart jorm_master.service"]);
  });

  test("a file that existed before install (not in the manifest) is not overwritten", () => {
    const pre: Existing = { ...nothing, paths: { [runnerConfig(0)]: { kind: "file", sha256: sha256Hex("mine\n"), text: "mine\n" } } };
    const plan = planInstall(w, pre, options);
    expect(opFor(plan.ops, runnerConfig(0))).toBeUndefined();
    expect(plan.kept.map((k) => k.path)).toEqual([runnerConfig(0)]);
    expect(plan.kept[0]!.why).toContain("exists with other content");
    // and it is not recorded as ours
    const manifest = afterApply(pre, plan).manifest!;
    expect(manifest.entries.some((e) => e.path === runnerConfig(0))).toBe(false);
  });

  test("an upgrade of our own unit (untouched by the operator) is written, reloaded, master restarted", () => {
    const changed = structuredClone(installed);
    const old = "old unit\n";
    changed.paths[unitPath] = { kind: "file", sha256: sha256Hex(old), text: old };
    changed.manifest!.entries.find((e) => e.path === unitPath)!.sha256 = sha256Hex(old);
    const plan = planInstall(w, changed, options);
    expect(opFor(plan.ops, unitPath)).toMatchObject({ op: "write", action: "update" });
    expect(systemctlCalls(plan.ops)).toEqual(["daemon-reload", "restart jorm_master.service"]);
  });

  test("more runners: only the new runner's files, the config update and a master restart", () => {
    const plan = planInstall(wanted(3), installed, options);
    const paths = plan.ops.flatMap((o) => ("path" in o ? [o.path] : []));
    expect(paths).toContain(runnerConfig(2));
    expect(paths).toContain(`${HOME}/.config/jorm-master/jorm_master.yaml`);
    expect(paths).not.toContain(runnerConfig(1));
    expect(systemctlCalls(plan.ops)).toEqual(["restart jorm_master.service"]);
  });

  test("fewer runners: master stopped, extra units stopped and disabled, their files removed, storage kept", () => {
    const three = afterApply(nothing, planInstall(wanted(3), nothing, options));
    const plan = planInstall(wanted(2), three, options);
    expect(systemctlCalls(plan.ops)).toEqual(["stop jorm_master.service", "disable --now jorm_runner@2.service", "start jorm_master.service"]);
    expect(opFor(plan.ops, runnerConfig(2))).toMatchObject({ op: "remove" });
    expect(opFor(plan.ops, `${HOME}/.local/bin/jormungandr_runner_2`)).toMatchObject({ op: "remove" });
    expect(plan.notes.join("\n")).toContain("storage_jorm_runner_2 of runner 2 is kept");
    const after = afterApply(three, plan);
    expect(after.manifest!.runners).toBe(2);
    expect(after.manifest!.entries.some((e) => e.role === "storage" && e.runner === 2)).toBe(true);
    expect(planInstall(wanted(2), after, options).ops).toEqual([]);
  });

  test("staged (no service manager): no systemctl operations, a note on what to run", () => {
    const plan = planInstall(w, { ...nothing, units: null }, options);
    expect(systemctlCalls(plan.ops)).toEqual([]);
    expect(plan.notes.join("\n")).toContain("systemctl --user daemon-reload && systemctl --user enable --now jorm_master.service");
  });

  test("--no-start: units installed and reloaded, the master neither enabled nor started", () => {
    const plan = planInstall(w, nothing, { force: false, start: false });
    expect(systemctlCalls(plan.ops)).toEqual(["daemon-reload"]);
  });

  test("master enabled but stopped: started; running and unchanged: left alone", () => {
    expect(systemctlCalls(planInstall(w, { ...installed, units: { masterEnabled: true, masterActive: false } }, options).ops)).toEqual([
      "start jorm_master.service",
    ]);
    expect(systemctlCalls(planInstall(w, { ...installed, units: { masterEnabled: true, masterActive: true } }, options).ops)).toEqual([]);
  });

  test("symlinks: an explicit --jormungandr relinks, an inferred target keeps what is there", () => {
    const relink = planInstall(wanted(2, { jormungandr: "/opt/jormungandr_new" }), installed, options);
    expect(opFor(relink.ops, `${HOME}/.local/bin/jormungandr_runner_0`)).toMatchObject({ op: "symlink", previous: "/opt/jormungandr" });
    const w2 = wanted(2, { jormungandr: "/opt/other" });
    for (const e of w2.entries) if (e.type === "symlink") e.explicit = false;
    expect(planInstall(w2, installed, options).ops).toEqual([]);
  });

  test("a missing run-as user is created first", () => {
    const withUser: Wanted = { ...w, entries: [{ type: "user", name: "cardano", home: "/home/cardano" }, ...w.entries] };
    const plan = planInstall(withUser, nothing, options);
    expect(plan.ops[0]).toEqual({ op: "useradd", name: "cardano", home: "/home/cardano" });
    expect(planInstall(withUser, { ...nothing, users: { cardano: true } }, options).ops[0]!.op).not.toBe("useradd");
  });

  test("the template given once is recorded and stays the template of later runs", () => {
    const template = "p2p:\n  public_address: /ip4/1.2.3.4/tcp/4000\n";
    const plan = planInstall(wanted(2, { template }), nothing, options);
    const manifest = (plan.ops.find((o) => o.op === "manifest") as { manifest: Manifest }).manifest;
    expect(manifest.nodeConfigTemplate).toBe(template);
  });
});

describe("planUninstall", () => {
  const installed = afterApply(nothing, planInstall(wanted(2), nothing, options));
  const manifest = installed.manifest!;

  test("stops units first, removes files, keeps storage and secret, removes the manifest before the dirs", () => {
    const plan = planUninstall(manifest, layout.manifestPath, installed, { purge: false, force: false });
    expect(systemctlCalls(plan.ops)).toEqual([
      "disable --now jorm_master.service",
      "disable --now jorm_runner@0.service",
      "disable --now jorm_runner@1.service",
      "daemon-reload",
    ]);
    const removed = plan.ops.flatMap((o) => (o.op === "remove" ? [o.path] : []));
    expect(removed).toContain(unitPath);
    expect(removed).toContain(runnerConfig(1));
    expect(removed.some((p) => p.includes("storage_jorm_runner"))).toBe(false);
    expect(removed.some((p) => p.endsWith("node_secret.yaml"))).toBe(false);
    expect(plan.notes.join("\n")).toContain("--purge removes it");
    const firstRmdir = plan.ops.findIndex((o) => o.op === "rmdir");
    expect(plan.ops.findIndex((o) => o.op === "manifest")).toBeLessThan(firstRmdir);
    // deepest directories first
    const rmdirs = plan.ops.flatMap((o) => (o.op === "rmdir" ? [o.path] : []));
    const depths = rmdirs.map((p) => p.split("/").length);
    expect(depths).toEqual([...depths].sort((a, b) => b - a));
  });

  test("--purge removes storage and the secret too", () => {
    const plan = planUninstall(manifest, layout.manifestPath, installed, { purge: true, force: false });
    const removed = plan.ops.flatMap((o) => (o.op === "remove" ? [o.path] : []));
    expect(removed).toContain(`${HOME}/.local/share/jorm-master/storage_jorm_runner_0`);
    expect(removed).toContain(`${HOME}/.config/jorm-master/node_secret.yaml`);
  });

  test("a file changed since install stays unless --force", () => {
    const edited = structuredClone(installed);
    edited.paths[runnerConfig(0)] = { kind: "file", sha256: sha256Hex("x"), text: "x" };
    const plan = planUninstall(manifest, layout.manifestPath, edited, { purge: false, force: false });
    expect(plan.kept.map((k) => k.path)).toEqual([runnerConfig(0)]);
    const forced = planUninstall(manifest, layout.manifestPath, edited, { purge: false, force: true });
    expect(forced.ops.some((o) => o.op === "remove" && o.path === runnerConfig(0))).toBe(true);
  });
});
