// The program's edges, through the real entry point in a subprocess: usage errors (64, "did you
// mean", nothing done), help on a pipe and on a terminal, and a reader that goes away (EPIPE).
import { afterAll, beforeEach, describe, expect, test } from "bun:test";
import { EventEmitter } from "node:events";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { errorText, quietOnClosedStdout, useColour } from "../src/cli.ts";
import { EXIT_USAGE } from "../src/errors.ts";

const CLI = join(import.meta.dir, "../src/cli.ts");
const SEED = join(import.meta.dir, "fixtures/seed/jorm_master.yaml");
const HASH = "8e4d2a343f3dcf9330ad9035b3e8d168e6728904262f2c434a4f8f934ec7b676";
const ANSI = /\x1b\[[0-9;]*m/;
const STACK_LINE = /^\s+at /m;
const base = mkdtempSync(join(tmpdir(), "jm-cli-"));
afterAll(() => rmSync(base, { recursive: true, force: true }));

/** The environment of an operator's shell: no CI/TEST markers that would turn colour off by themselves. */
function env(extra: Record<string, string> = {}): Record<string, string> {
  const { CI: _ci, TEST: _t, NO_COLOR: _n, JORM_MASTER_CONFIG: _c, JOURNAL_STREAM: _j, ...rest } = process.env;
  return { ...(rest as Record<string, string>), ...extra };
}

function cli(args: string[], extra: Record<string, string> = {}) {
  const r = Bun.spawnSync(["bun", CLI, ...args], { env: env(extra), stdout: "pipe", stderr: "pipe", stdin: "ignore" });
  return { code: r.exitCode, stdout: r.stdout.toString(), stderr: r.stderr.toString() };
}

let n = 0;
let dir: string;
let inputs: { jormungandr: string; secret: string };
beforeEach(() => {
  dir = join(base, `t${n++}`);
  mkdirSync(join(dir, "in"), { recursive: true });
  inputs = { jormungandr: join(dir, "in/jormungandr"), secret: join(dir, "in/secret.yaml") };
  writeFileSync(inputs.jormungandr, "#!/bin/sh\n");
  chmodSync(inputs.jormungandr, 0o755);
  writeFileSync(inputs.secret, "genesis:\n  node_id: 00\n");
});

const installArgs = (root: string) => [
  "install", "--root", root, "--runners", "2", "--jormungandr", inputs.jormungandr, "--genesis-hash", HASH, "--secret", inputs.secret,
];

describe("unknown flags and commands: exit 64 with a suggestion, nothing done", () => {
  test("install --dryrun installs nothing", () => {
    const root = join(dir, "root");
    const r = cli([...installArgs(root), "--dryrun"]);
    expect(r.code).toBe(EXIT_USAGE);
    expect(r.stderr).toContain("unknown flag --dryrun; did you mean --dry-run?");
    expect(r.stderr).toContain("See: jorm-master install --help");
    expect(r.stdout).toBe("");
    expect(existsSync(root)).toBe(false);
  });

  test("uninstall --purge --dry_run deletes nothing", () => {
    const root = join(dir, "root");
    expect(cli([...installArgs(root), "--yes"]).code).toBe(0);
    const secret = join(root, "etc/cardano/node_secret.yaml");
    const storage = join(root, "home/cardano/storage_jorm_runner_0");
    writeFileSync(join(storage, "blocks.sqlite"), "chain");
    const r = cli(["uninstall", "--root", root, "--purge", "--dry_run"]);
    expect(r.code).toBe(EXIT_USAGE);
    expect(r.stderr).toContain("unknown flag --dry_run; did you mean --dry-run?");
    expect(existsSync(secret)).toBe(true);
    expect(readdirSync(storage)).toEqual(["blocks.sqlite"]);
  });

  test("status --jsno prints no table", () => {
    const r = cli(["status", "--jsno", "--rest-only", "--config", SEED]);
    expect(r.code).toBe(EXIT_USAGE);
    expect(r.stderr).toContain("unknown flag --jsno; did you mean --json?");
    expect(r.stdout).toBe("");
  });

  test("an unknown command and an unknown subcommand", () => {
    const top = cli(["instal", "--runners", "3"]);
    expect(top.code).toBe(EXIT_USAGE);
    expect(top.stderr).toContain('unknown command "instal"; did you mean "install"?');
    const sub = cli(["config", "chek", "--config", SEED]);
    expect(sub.code).toBe(EXIT_USAGE);
    expect(sub.stderr).toContain('jorm-master config: unknown command "chek"; did you mean "check"?');
    expect(sub.stdout).toBe("");
    expect(sub.stderr).not.toMatch(STACK_LINE);
  });

  test("a bare jorm-master prints help on stderr and exits 64; --help prints it on stdout and exits 0", () => {
    const bare = cli([]);
    expect(bare.code).toBe(EXIT_USAGE);
    expect(bare.stdout).toBe("");
    expect(bare.stderr).toContain("USAGE jorm-master");
    const group = cli(["config"]);
    expect(group.code).toBe(EXIT_USAGE);
    expect(group.stderr).toContain("USAGE jorm-master config init|check|print");
    const help = cli(["--help"]);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain("USAGE jorm-master");
    expect(cli(["--version"]).code).toBe(0);
  });
});

describe("colour", () => {
  test("--help on a pipe has no colour", () => {
    const r = cli(["status", "--help"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("--json");
    expect(r.stdout).not.toMatch(ANSI);
  });

  const script = Bun.which("script");
  test.skipIf(script === null)("--help on a terminal is coloured unless NO_COLOR is set", () => {
    const run = (extra: Record<string, string>) =>
      Bun.spawnSync([script!, "-qfec", `bun ${CLI} status --help`, "/dev/null"], { env: env({ TERM: "xterm-256color", ...extra }), stdout: "pipe", stderr: "pipe" }).stdout.toString();
    expect(run({})).toMatch(ANSI);
    expect(run({ NO_COLOR: "yes" })).not.toMatch(ANSI);
  }, 20_000);

  test("useColour: a TTY, NO_COLOR unset or empty, TERM not dumb", () => {
    expect(useColour({ isTTY: true }, {})).toBe(true);
    expect(useColour({ isTTY: false }, {})).toBe(false);
    expect(useColour({}, {})).toBe(false);
    expect(useColour({ isTTY: true }, { NO_COLOR: "1" })).toBe(false);
    expect(useColour({ isTTY: true }, { NO_COLOR: "" })).toBe(true);
    expect(useColour({ isTTY: true }, { TERM: "dumb" })).toBe(false);
  });
});

describe("fatal errors under journald", () => {
  test("the daemon's start-up error (a broken config, exit 78) carries <3> on every line; without the journal it is plain", () => {
    const config = join(dir, "broken.yaml");
    writeFileSync(config, "cnt_runners: 3\nmax_ofset: 5\n");
    const journal = cli(["daemon", "--config", config], { JOURNAL_STREAM: "8:4242" });
    expect(journal.code).toBe(78);
    expect(journal.stderr).toContain('max_ofset: unknown key; did you mean "max_offset"?');
    const lines = journal.stderr.trimEnd().split("\n");
    expect(lines.length).toBeGreaterThan(0);
    for (const line of lines) expect(line).toStartWith("<3>");
    // A unit's ExecStart with a mistyped flag is filed as an error too
    const usage = cli(["runner", "0", "--prnt"], { JOURNAL_STREAM: "8:4242" });
    expect(usage.code).toBe(EXIT_USAGE);
    expect(usage.stderr).toBe("<3>jorm-master runner: unknown flag --prnt; did you mean --print?\n<3>See: jorm-master runner --help\n");
    const plain = cli(["daemon", "--config", config]);
    expect(plain.code).toBe(78);
    expect(plain.stderr).not.toContain("<3>");
    expect(plain.stderr).toContain('did you mean "max_offset"?');
  });

  test("errorText: plain without JOURNAL_STREAM; <3> per line (a bug's stack too) with it", async () => {
    const { UserError } = await import("../src/errors.ts");
    expect(await errorText(new UserError("a\nb", 78), {})).toBe("a\nb\n");
    expect(await errorText(new UserError("a\nb", 78), { JOURNAL_STREAM: "8:1" })).toBe("<3>a\n<3>b\n");
    const bug = await errorText(new Error("boom"), { JOURNAL_STREAM: "8:1" });
    expect(bug).toContain("<3>Error: boom");
    for (const line of bug.trimEnd().split("\n")) expect(line).toStartWith("<3>");
  });
});

describe("a reader that goes away (EPIPE)", () => {
  test("status --watch | head ends quietly with exit 0", () => {
    const command = `bun ${CLI} status --watch --interval 0.05 --rest-only --config ${SEED} | head -n 1; echo "exit=\${PIPESTATUS[0]}" >&2`;
    const r = Bun.spawnSync(["timeout", "30", "bash", "-c", command], { env: env(), stdout: "pipe", stderr: "pipe" });
    expect(r.stdout.toString()).toStartWith("jorm-master status");
    const stderr = r.stderr.toString();
    expect(stderr).not.toContain("EPIPE");
    expect(stderr).not.toMatch(STACK_LINE);
    expect(stderr.trim()).toEndWith("exit=0");
  }, 40_000);

  test("quietOnClosedStdout exits 0 on EPIPE and rethrows anything else", () => {
    const stream = new EventEmitter() as unknown as NodeJS.WriteStream;
    const exits: number[] = [];
    quietOnClosedStdout(stream, (code) => exits.push(code));
    stream.emit("error", Object.assign(new Error("broken pipe"), { code: "EPIPE" }));
    expect(exits).toEqual([0]);
    expect(() => stream.emit("error", Object.assign(new Error("no space"), { code: "ENOSPC" }))).toThrow("no space");
  });
});
