// hold, release and switchover with no daemon running: they say so and exit 1; --help teaches.
import { describe, expect, test } from "bun:test";
import { join } from "node:path";

const CLI = join(import.meta.dir, "../../src/cli.ts");
const SEED = join(import.meta.dir, "../fixtures/seed/jorm_master.yaml");

function cli(args: string[]) {
  const env = { ...process.env, JORM_MASTER_CONTROL_SOCKET: join(import.meta.dir, "no-such-daemon.sock"), NO_COLOR: "1" };
  const r = Bun.spawnSync(["bun", CLI, ...args], { env, stdout: "pipe", stderr: "pipe", stdin: "ignore" });
  return { code: r.exitCode, stdout: r.stdout.toString(), stderr: r.stderr.toString() };
}

describe("operator commands without a daemon", () => {
  for (const args of [["hold", "1", "--reason", "disk"], ["release", "1"], ["switchover", "--yes"], ["switchover", "2", "--force", "--yes"], ["switchover", "--host", "host-b", "--yes"]]) {
    test(`${args.join(" ")}: exit 1, "no daemon is running"`, () => {
      const r = cli([...args, "--config", SEED]);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain("no daemon is running");
      expect(r.stdout).toBe("");
    });
  }
  test("switchover --host takes no runner id, and needs a name (usage errors); --help teaches it", () => {
    expect(cli(["switchover", "1", "--host", "host-b", "--yes", "--config", SEED]).code).toBe(64);
    expect(cli(["switchover", "--host", "", "--yes", "--config", SEED]).code).toBe(64);
    expect(cli(["switchover", "--help"]).stdout).toContain("jorm-master switchover --host host-b --yes");
  });
  test("a runner id that is not a number is a usage error", () => {
    expect(cli(["hold", "x", "--config", SEED]).code).toBe(64);
  });
  test("upgrade checks the new binary first: one that fails --version is refused (exit 1)", () => {
    const r = cli(["upgrade", "--jormungandr", "/no/such/jormungandr", "--dry-run", "--config", SEED]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("the new binary is not usable");
  });
  test("upgrade --runners names only runners that exist (usage error)", () => {
    const r = cli(["upgrade", "--jormungandr", "/bin/true", "--runners", "0,9", "--dry-run", "--config", SEED]);
    // coreutils' true answers --version, so the runner list is what is refused
    expect(r.code).toBe(64);
    expect(r.stderr).toContain('"9" is not a runner');
  });
  for (const cmd of ["hold", "release", "switchover", "upgrade"]) {
    test(`${cmd} --help shows an example`, () => {
      const r = cli([cmd, "--help"]);
      expect(r.code).toBe(0);
      expect(r.stdout).toContain(`Example: jorm-master ${cmd}`);
    });
  }
});
