// install's systemctl calls go through the same bounded spawner as the daemon's.
import { describe, expect, test } from "bun:test";
import { realSystemctl } from "../../src/install/systemctl.ts";
import type { RunResult, Spawner } from "../../src/systemd/systemctl.ts";

function spawner(result: Partial<RunResult>): Spawner & { argvs: string[][] } {
  const argvs: string[][] = [];
  const run = async (argv: readonly string[]) => {
    argvs.push([...argv]);
    return { exitCode: 0, stdout: "", stderr: "", timedOut: false, ...result };
  };
  return Object.assign(run, { argvs });
}

describe("realSystemctl", () => {
  test("runs systemctl (--user in the user scope) through the given spawner", async () => {
    const s = spawner({ stdout: "enabled\n" });
    const sc = realSystemctl("user", 1_000, s);
    await sc.run(["daemon-reload"]);
    expect(await sc.isEnabled("x.service")).toBe(true);
    expect(s.argvs).toEqual([["systemctl", "--user", "daemon-reload"], ["systemctl", "--user", "is-enabled", "x.service"]]);
    expect(sc.prefix).toBe("systemctl --user");
  });

  test("a call killed at its deadline or failing is a user error naming the command", async () => {
    await expect(realSystemctl("system", 2_000, spawner({ exitCode: null, timedOut: true })).run(["stop", "a"])).rejects.toThrow("systemctl stop a did not finish within 2 s");
    await expect(realSystemctl("system", 2_000, spawner({ exitCode: 5, stderr: "Unit a not loaded." })).run(["stop", "a"])).rejects.toThrow("systemctl stop a failed (exit 5): Unit a not loaded.");
  });
});
