import { afterAll, beforeAll, beforeEach, describe, expect, test } from "bun:test";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

// install.sh against a local release server: a fake dist/ (a tiny shell script standing in for the
// binary, so the test stays fast) served by Bun.serve on 127.0.0.1.

const SCRIPT = join(import.meta.dir, "../install.sh");
const VERSION = "0.1.0";
const ASSETS = ["jorm-master-linux-x64", "jorm-master-linux-x64-baseline"];
const FAKE_BINARY = `#!/bin/sh
case "$1" in
  --version) echo "${VERSION}+abc1234" ;;
  install) shift; echo "INSTALL-ARGS: $*" ;;
  *) echo "unexpected: $*" >&2; exit 2 ;;
esac
`;

const sha256 = (text: string) => new Bun.CryptoHasher("sha256").update(text).digest("hex");
const root = mkdtempSync(join(tmpdir(), "jm-installsh-"));
let served: Record<string, string> = {};
let requests: string[] = [];
let server: ReturnType<typeof Bun.serve>;

beforeAll(() => {
  server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    fetch(req) {
      const path = new URL(req.url).pathname;
      requests.push(path);
      const body = served[path];
      return body === undefined ? new Response("not found", { status: 404 }) : new Response(body);
    },
  });
});
afterAll(() => {
  server.stop(true);
  rmSync(root, { recursive: true, force: true });
});

let n = 0;
let dir: string;
beforeEach(() => {
  dir = join(root, `t${n++}`);
  mkdirSync(dir);
  requests = [];
  publish(`/v${VERSION}`, FAKE_BINARY, FAKE_BINARY);
});

/** A release under `prefix`: SHA256SUMS lists `listed`, the server hands out `body`. */
function publish(prefix: string, listed: string, body: string) {
  served = {};
  served[`${prefix}/SHA256SUMS`] = ASSETS.map((a) => `${sha256(listed)}  ${a}\n`).join("");
  for (const a of ASSETS) served[`${prefix}/${a}`] = body;
}

async function run(args: string[], env: Record<string, string> = {}) {
  const proc = Bun.spawn(["sh", SCRIPT, ...args], {
    env: {
      PATH: process.env.PATH ?? "/usr/bin:/bin",
      JORM_MASTER_BASE_URL: `http://127.0.0.1:${server.port}`,
      JORM_MASTER_VERSION: VERSION,
      JORM_MASTER_BIN_DIR: join(dir, "bin"),
      TMPDIR: join(dir),
      ...env,
    },
    stdout: "pipe",
    stderr: "pipe",
  });
  const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  return { stdout, stderr, code };
}

describe("install.sh", () => {
  test("downloads, verifies, installs the binary and passes its arguments to `jorm-master install`", async () => {
    const r = await run(["--runners", "3", "--jormungandr", "/usr/local/bin/jormungandr_546497fc"]);
    expect(r.stderr).toContain("checksum verified");
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toBe("INSTALL-ARGS: --runners 3 --jormungandr /usr/local/bin/jormungandr_546497fc");
    const bin = join(dir, "bin/jorm-master");
    expect(statSync(bin).mode & 0o777).toBe(0o755);
    const version = Bun.spawnSync([bin, "--version"]).stdout.toString().trim();
    expect(version).toBe(`${VERSION}+abc1234`);
    expect(requests).toHaveLength(2);
    expect(requests[0]).toBe(`/v${VERSION}/SHA256SUMS`);
    // the temporary download dir is gone
    expect(Bun.spawnSync(["find", dir, "-name", "jorm-master-linux-x64*"]).stdout.toString()).toBe("");
  });

  test("re-running with the installed version downloads nothing", async () => {
    await run([]);
    requests = [];
    const r = await run(["--dry-run"]);
    expect(r.code).toBe(0);
    expect(requests).toEqual([]);
    expect(r.stderr).toContain("is already installed");
    expect(r.stdout.trim()).toBe("INSTALL-ARGS: --dry-run");
  });

  test("latest: an installed binary identical to the release is not downloaded again", async () => {
    await run([]);
    publish("/latest", FAKE_BINARY, FAKE_BINARY);
    requests = [];
    const r = await run([], { JORM_MASTER_VERSION: "" });
    expect(r.code).toBe(0);
    expect(requests).toEqual(["/latest/SHA256SUMS"]);
  });

  test("a corrupted download is refused with both hashes printed, nothing installed", async () => {
    const corrupted = FAKE_BINARY.replace("abc1234", "evil999");
    publish(`/v${VERSION}`, FAKE_BINARY, corrupted);
    const r = await run(["--runners", "3"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("checksum mismatch");
    expect(r.stderr).toContain(`expected: ${sha256(FAKE_BINARY)}`);
    expect(r.stderr).toContain(`actual:   ${sha256(corrupted)}`);
    expect(r.stdout).not.toContain("INSTALL-ARGS");
    expect(existsSync(join(dir, "bin/jorm-master"))).toBe(false);
  });

  test("an unsupported architecture is a clear error", async () => {
    const fakeBin = join(dir, "fakebin");
    mkdirSync(fakeBin);
    writeFileSync(join(fakeBin, "uname"), "#!/bin/sh\necho aarch64\n");
    chmodSync(join(fakeBin, "uname"), 0o755);
    const r = await run([], { PATH: `${fakeBin}:${process.env.PATH}` });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("unsupported architecture aarch64: only x86_64 (amd64) builds are published");
    expect(requests).toEqual([]);
  });

  test("a missing release is a download error, not a silent success", async () => {
    const r = await run([], { JORM_MASTER_VERSION: "9.9.9" });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("download failed");
  });

  const shellcheck = Bun.which("shellcheck");
  test.skipIf(shellcheck === null)("is POSIX sh and shellcheck-clean", () => {
    const r = Bun.spawnSync([shellcheck!, "-s", "sh", SCRIPT], { stdout: "pipe", stderr: "pipe" });
    expect(r.stdout.toString() + r.stderr.toString()).toBe("");
    expect(r.exitCode).toBe(0);
    expect(readFileSync(SCRIPT, "utf8")).toMatch(/^#!\/bin\/sh\n[\s\S]*^set -eu$/m);
  });
});
