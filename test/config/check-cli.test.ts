// `jorm-master config check` end to end on files that used to crash it or pass it wrongly (issue 9,
// points 3, 5 and 13): exit 78, file:line, one message, no stack trace.

import { expect, test } from "bun:test";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { EXIT_CONFIG } from "../../src/errors.ts";

const CLI = join(import.meta.dir, "..", "..", "src", "cli.ts");
const BOMB = ["a: &a [x, x, x, x, x, x, x, x, x]", ...["b", "c", "d", "e", "f", "g"].map((k, i) => `${k}: &${k} [${Array(9).fill(`*${"abcdefg"[i]}`).join(", ")}]`), ""].join("\n");

const cases: [string, string, string][] = [
  ["an alias bomb", BOMB, ":2:8: YAML too many aliases"],
  ["a URL as rest_host", "rest_host: http://127.0.0.1\n", ":1:12: rest_host: is a URL"],
  ["a REST deadline that rounds to 0 ms", "rest_timeout: 0.0004\n", ":1:15: rest_timeout: must be at least 0.05 s (50 ms)"],
  ["cnt_runners: 4000000000000000 with rest_base_port (hung config check)", "cnt_runners: 4000000000000000\nrest_base_port: 3100\n", ":1:14: cnt_runners: must be at most 100"],
];

for (const [name, yaml, fragment] of cases) {
  test(`config check: ${name} → exit 78 with file:line, no stack trace`, async () => {
    const file = join(mkdtempSync(join(tmpdir(), "jm-check-")), "jorm_master.yaml");
    writeFileSync(file, yaml);
    const p = Bun.spawn(["bun", CLI, "config", "check", "--config", file], { stdout: "pipe", stderr: "pipe", timeout: 20_000 });
    const [stderr, code] = await Promise.all([new Response(p.stderr).text(), p.exited]);
    expect(code).toBe(EXIT_CONFIG);
    expect(stderr).toContain(`${file}${fragment}`);
    expect(stderr).not.toMatch(/^\s+at /m);
  }, 30_000);
}
