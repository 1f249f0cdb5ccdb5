// Golden situations for decide (see golden.ts for the format). A failing case prints its diff;
// after a deliberate rule change, regenerate and review the diff of testdata/:
//   JORM_GOLDEN_UPDATE=1 bun test test/master/golden.test.ts
import { describe, expect, test } from "bun:test";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { formatGolden, parseGolden, runGolden } from "./golden.ts";

const DIR = join(import.meta.dir, "testdata");
const UPDATE = process.env.JORM_GOLDEN_UPDATE === "1";
const files = readdirSync(DIR).filter((f) => f.endsWith(".txt")).sort();

test("the golden files exist and hold about 40 situations", () => {
  const n = files.reduce((s, f) => s + parseGolden(readFileSync(join(DIR, f), "utf8")).length, 0);
  expect(n).toBeGreaterThanOrEqual(40);
});

for (const file of files) {
  const path = join(DIR, file);
  const cases = parseGolden(readFileSync(path, "utf8"));
  if (UPDATE) {
    writeFileSync(path, formatGolden(cases.map((c) => ({ input: c.input, output: runGolden(c.input) }))));
    continue;
  }
  describe(file, () => {
    test("is in canonical form (what an update would write back, outputs aside)", () => {
      const text = readFileSync(path, "utf8");
      expect(formatGolden(cases.map((c) => ({ input: c.input, output: c.expected })))).toBe(text);
    });
    for (const c of cases) {
      test(`${c.name} (line ${c.line})`, () => {
        expect(runGolden(c.input).join("\n")).toBe(c.expected.join("\n"));
      });
    }
  });
}
