#!/usr/bin/env bun
// Build the single self-contained binary: `bun run build` → dist/jorm-master-linux-x64 (+ -baseline
// for CPUs without AVX2 when possible) and dist/SHA256SUMS for install.sh to verify downloads.
//
//   bun run build              both binaries when the baseline runtime is local (always with Bun >= 1.4)
//   bun run build --baseline   with an older Bun, let it download the baseline runtime if it is missing
//   bun run build --no-baseline --outdir DIR   (tests) only the native binary, elsewhere

import { existsSync, mkdirSync, rmSync, statSync } from "node:fs";
import { homedir } from "node:os";
import { basename, join } from "node:path";
import pkg from "../package.json" with { type: "json" };

const ROOT = join(import.meta.dir, "..");
const ENTRY = join(ROOT, "src/cli.ts");
const MB = 1024 * 1024;

interface Target {
  /** bun --target */
  bunTarget: string;
  outfile: string;
}

function log(step: string) {
  process.stdout.write(`build: ${step}\n`);
}

function gitShortSha(): string {
  const r = Bun.spawnSync(["git", "rev-parse", "--short", "HEAD"], { cwd: ROOT, stdout: "pipe", stderr: "pipe" });
  if (r.exitCode !== 0) return "nogit";
  const dirty = Bun.spawnSync(["git", "status", "--porcelain", "--untracked-files=no"], { cwd: ROOT, stdout: "pipe" });
  return `${r.stdout.toString().trim()}${dirty.stdout.toString().trim() === "" ? "" : ".dirty"}`;
}

/**
 * A local Bun runtime for the baseline (no AVX2) target, so the build never downloads one.
 * Since Bun 1.4 x64 ships a single runtime built for Nehalem that picks AVX2 paths at run time;
 * "-baseline" resolves to that same runtime (the one Bun downloads for it was byte-identical to
 * the local bun here), so the running Bun is the baseline runtime. Older Bun: only a cached one.
 */
function baselineRuntime(bunTarget: string): { path: string; why: string } | null {
  const [major = 0, minor = 0] = Bun.version.split(".").map(Number);
  if (major > 1 || (major === 1 && minor >= 4)) {
    return { path: process.execPath, why: `Bun ${Bun.version}'s own x64 runtime is the baseline one` };
  }
  const cacheDir = process.env.BUN_INSTALL_CACHE_DIR ?? join(process.env.BUN_INSTALL ?? join(homedir(), ".bun"), "install/cache");
  const file = join(cacheDir, `${bunTarget}-v${Bun.version}`);
  return existsSync(file) ? { path: file, why: `cached runtime ${file}` } : null;
}

async function compile(target: Target, version: string, executablePath: string | null): Promise<void> {
  const args = [
    "bun",
    "build",
    "--compile",
    "--minify",
    // linked source map beside the binary: stack traces of a bug point at the TypeScript
    "--sourcemap",
    // the binary runs as a systemd unit from any directory: a stray .env or bunfig.toml there
    // must not change its behaviour
    "--no-compile-autoload-dotenv",
    "--no-compile-autoload-bunfig",
    `--target=${target.bunTarget}`,
    "--define",
    `JORM_MASTER_VERSION=${JSON.stringify(version)}`,
    ...(executablePath ? [`--compile-executable-path=${executablePath}`] : []),
    "--outfile",
    target.outfile,
    ENTRY,
  ];
  const started = performance.now();
  const proc = Bun.spawn(args, { cwd: ROOT, stdout: "pipe", stderr: "pipe" });
  const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  if (code !== 0) {
    process.stderr.write(out + err);
    throw new Error(`bun build --target=${target.bunTarget} failed with exit code ${code}`);
  }
  const seconds = ((performance.now() - started) / 1000).toFixed(1);
  log(`${basename(target.outfile)}: ${(statSync(target.outfile).size / MB).toFixed(1)} MB in ${seconds} s`);
}

async function sha256(file: string): Promise<string> {
  const hasher = new Bun.CryptoHasher("sha256");
  hasher.update(await Bun.file(file).arrayBuffer());
  return hasher.digest("hex");
}

async function main() {
  if (process.platform !== "linux" || process.arch !== "x64") {
    throw new Error(`release binaries are built on linux-x64; this is ${process.platform}-${process.arch}`);
  }
  const argv = process.argv.slice(2);
  const allowBaselineDownload = argv.includes("--baseline");
  const skipBaseline = argv.includes("--no-baseline");
  const outdirAt = argv.indexOf("--outdir");
  const DIST = outdirAt >= 0 && argv[outdirAt + 1] ? argv[outdirAt + 1]! : join(ROOT, "dist");
  const version = `${pkg.version}+${gitShortSha()}`;
  log(`jorm-master ${version} with Bun ${Bun.version}`);

  rmSync(DIST, { recursive: true, force: true });
  mkdirSync(DIST, { recursive: true });

  const native: Target = { bunTarget: "bun-linux-x64", outfile: join(DIST, "jorm-master-linux-x64") };
  await compile(native, version, null);
  const built = [native.outfile];

  const baseline: Target = { bunTarget: "bun-linux-x64-baseline", outfile: join(DIST, "jorm-master-linux-x64-baseline") };
  const runtime = baselineRuntime(baseline.bunTarget);
  if (skipBaseline) {
    log(`skipped ${basename(baseline.outfile)} (--no-baseline)`);
  } else if (runtime !== null || allowBaselineDownload) {
    if (runtime) log(`baseline (CPUs without AVX2): ${runtime.why}`);
    await compile(baseline, version, runtime?.path ?? null);
    built.push(baseline.outfile);
  } else {
    log(
      `skipped ${basename(baseline.outfile)} (for CPUs without AVX2): its Bun runtime is not cached and ` +
        "would have to be downloaded; run `bun run build --baseline` to allow that",
    );
  }

  const check = Bun.spawnSync([native.outfile, "--version"], { cwd: DIST, stdout: "pipe", stderr: "pipe" });
  const reported = check.stdout.toString().trim();
  if (check.exitCode !== 0 || reported !== version) {
    throw new Error(`the built binary reports ${JSON.stringify(reported)} (exit ${check.exitCode}), expected ${version}`);
  }
  log(`${basename(native.outfile)} --version → ${reported}`);

  // The source map is embedded in the binary (stack traces point at src/*.ts without it), so the
  // side files would only be clutter next to the release assets.
  for (const file of built) rmSync(`${file}.map`, { force: true });

  const lines = await Promise.all(built.map(async (file) => `${await sha256(file)}  ${basename(file)}\n`));
  await Bun.write(join(DIST, "SHA256SUMS"), lines.join(""));
  log(`SHA256SUMS: ${built.length} file(s)`);
  for (const line of lines) process.stdout.write(`  ${line}`);
}

await main().catch((error: unknown) => {
  process.stderr.write(`build failed: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
