// Builds the real binary once (native target only, into a temp dir) and checks what the release
// promises: the version, the checksums, the embedded commands, and immunity to a stray .env or
// bunfig.toml in the working directory (the unit runs it from wherever systemd puts it).
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pkg from "../package.json" with { type: "json" };

const ROOT = join(import.meta.dir, "..");
const out = mkdtempSync(join(tmpdir(), "jm-build-"));
const work = mkdtempSync(join(tmpdir(), "jm-build-cwd-"));
const BIN = join(out, "jorm-master-linux-x64");
const SEEDS = ["jorm_master.yaml", "jorm_master.strict-2020-01.yaml"].map((f) => join(ROOT, "test/fixtures/seed", f));
let buildLog = "";

beforeAll(() => {
  const r = Bun.spawnSync(["bun", "scripts/build.ts", "--no-baseline", "--outdir", out], { cwd: ROOT, stdout: "pipe", stderr: "pipe" });
  buildLog = r.stdout.toString() + r.stderr.toString();
  if (r.exitCode !== 0) throw new Error(`build failed:\n${buildLog}`);
}, 120_000);
afterAll(() => {
  rmSync(out, { recursive: true, force: true });
  rmSync(work, { recursive: true, force: true });
});

function run(args: string[], cwd = work) {
  const { JORM_MASTER_CONFIG: _c, ...env } = process.env;
  const r = Bun.spawnSync([BIN, ...args], { cwd, env, stdout: "pipe", stderr: "pipe" });
  return { code: r.exitCode, stdout: r.stdout.toString(), stderr: r.stderr.toString() };
}

describe("bun run build", () => {
  test("prints each step with sizes", () => {
    expect(buildLog).toMatch(/build: jorm-master-linux-x64: \d+\.\d MB in/);
    expect(buildLog).toContain("build: SHA256SUMS: 1 file(s)");
  });

  test("--version is the package version plus the git commit", () => {
    const sha = Bun.spawnSync(["git", "rev-parse", "--short", "HEAD"], { cwd: ROOT }).stdout.toString().trim();
    const r = run(["--version"]);
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toMatch(new RegExp(`^${pkg.version.replaceAll(".", "\\.")}\\+${sha}(\\.dirty)?$`));
  });

  test("SHA256SUMS verifies with sha256sum -c; no source map side files", () => {
    const r = Bun.spawnSync(["sha256sum", "-c", "SHA256SUMS"], { cwd: out, stdout: "pipe" });
    expect(r.exitCode).toBe(0);
    expect(r.stdout.toString()).toBe("jorm-master-linux-x64: OK\n");
    expect(existsSync(`${BIN}.map`)).toBe(false);
  });

  test("config check: 0 on both seed files, 78 without a stack trace on a bad one", () => {
    for (const seed of SEEDS) expect(run(["config", "check", "--config", seed]).code).toBe(0);
    const bad = join(work, "bad.yaml");
    writeFileSync(bad, "max_ofset: 5\n");
    const r = run(["config", "check", "--config", bad]);
    expect(r.code).toBe(78);
    expect(r.stderr).toContain('did you mean "max_offset"?');
    expect(r.stderr).not.toMatch(/^\s+at /m);
  });

  test("a stray .env or bunfig.toml in the working directory is ignored", () => {
    const dir = join(work, "stray");
    Bun.spawnSync(["mkdir", "-p", dir]);
    writeFileSync(join(dir, ".env"), `JORM_MASTER_CONFIG=${SEEDS[0]}\n`);
    writeFileSync(join(dir, "preload.ts"), `require("node:fs").writeFileSync(${JSON.stringify(join(dir, "PRELOADED"))}, "x");\n`);
    writeFileSync(join(dir, "bunfig.toml"), `preload = ["./preload.ts"]\n`);
    const r = run(["config", "check"], dir);
    // with the .env loaded, the seed file would have been checked (exit 0)
    expect(r.stderr).toContain("/etc/cardano/jorm_master.yaml: config file not found");
    expect(existsSync(join(dir, "PRELOADED"))).toBe(false);
  });

  test("a bug's stack trace points at the TypeScript source (embedded source map)", () => {
    const r = run(["sim", "crash"]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain("deliberate crash for the source-map check");
    expect(r.stderr).toMatch(/src\/commands\/sim\.ts:\d+:\d+/);
  });
});
