// The command-line check against the declared citty args, on a small command tree (pure, no process).
import { describe, expect, test } from "bun:test";
import { defineCommand } from "citty";
import { checkArgv, nearest, osaDistance } from "../src/cli-args.ts";
import { main } from "../src/cli.ts";

const leaf = defineCommand({
  meta: { name: "leaf" },
  args: {
    id: { type: "positional", required: true },
    config: { type: "string" },
    "dry-run": { type: "boolean", default: false },
    start: { type: "boolean", default: true },
    verbose: { type: "boolean", alias: "V" },
  },
  run() {},
});
const passthrough = defineCommand({ meta: { name: "node" }, run() {} });
const tree = defineCommand({
  meta: { name: "t" },
  subCommands: { leaf, group: defineCommand({ meta: { name: "group" }, subCommands: { leaf, node: passthrough } }) },
});
const check = (...argv: string[]) => checkArgv(tree, argv, { program: "t", passthrough: ["group node"] });

describe("checkArgv", () => {
  test("declared flags in every citty spelling pass", async () => {
    for (const argv of [
      ["leaf", "1", "--config", "x", "--dry-run"],
      ["leaf", "--config=x", "1", "--dryRun"],
      ["leaf", "1", "--no-start", "-V", "--dry-run=false"],
      ["leaf", "--config", "--weird-value", "1"],
      ["group", "leaf", "--", "-1"],
      ["group", "node", "--rest-listen", "1.2.3.4:1", "--whatever"],
      ["leaf", "1", "--help"],
    ]) {
      expect(await check(...argv)).toBeNull();
    }
  });

  test("an unknown flag is a usage error with the nearest spelling", async () => {
    expect(await check("leaf", "1", "--dryrun")).toEqual({ kind: "usage", message: "t leaf: unknown flag --dryrun; did you mean --dry-run?", path: ["leaf"] });
    expect((await check("leaf", "1", "--dry_run"))?.kind).toBe("usage");
    expect((await check("leaf", "1", "--confg=x"))).toMatchObject({ message: "t leaf: unknown flag --confg; did you mean --config?" });
    expect((await check("leaf", "1", "-x"))).toMatchObject({ kind: "usage" });
    expect((await check("leaf", "1", "--zzzzzz"))).toMatchObject({ message: expect.stringContaining("flags: --config, --dry-run, --start, --verbose") });
    // Flags before the subcommand belong to the group, which has none
    expect((await check("--config", "x", "leaf", "1"))).toMatchObject({ kind: "usage", path: [] });
  });

  test("a negated string flag, a missing value and an extra argument are usage errors", async () => {
    expect(await check("leaf", "1", "--no-config")).toMatchObject({ kind: "usage" });
    expect(await check("leaf", "1", "--config")).toMatchObject({ message: "t leaf: --config needs a value" });
    expect(await check("leaf", "1", "2")).toMatchObject({ message: 't leaf: unexpected argument "2"' });
  });

  test("an unknown command is a usage error with the nearest name; a group alone asks for its help", async () => {
    expect(await check("laef")).toEqual({ kind: "usage", message: 't: unknown command "laef"; did you mean "leaf"?', path: [] });
    expect(await check("group", "lef", "1")).toMatchObject({ message: 't group: unknown command "lef"; did you mean "leaf"?' });
    expect(await check()).toEqual({ kind: "no-command", path: [] });
    expect(await check("group")).toEqual({ kind: "no-command", path: ["group"] });
    expect(await check("group", "--", "leaf")).toEqual({ kind: "no-command", path: ["group"] });
  });

  test("the issue's three examples against the real command tree", async () => {
    expect(await checkArgv(main, ["install", "--dryrun", "--runners", "3"])).toMatchObject({ message: expect.stringContaining("did you mean --dry-run?") });
    expect(await checkArgv(main, ["uninstall", "--purge", "--dry_run"])).toMatchObject({ message: expect.stringContaining("did you mean --dry-run?") });
    expect(await checkArgv(main, ["status", "--jsno"])).toMatchObject({ message: expect.stringContaining("did you mean --json?") });
    expect(await checkArgv(main, ["config", "check", "--config", "/x"])).toBeNull();
    expect(await checkArgv(main, ["runner", "0", "--print", "--config", "/x"])).toBeNull();
  });
});

describe("nearest", () => {
  test("typos, transpositions, separators and prefixes; nothing for what is far", () => {
    expect(osaDistance("jsno", "json")).toBe(1);
    expect(nearest("jsno", ["json", "watch", "interval"])).toBe("json");
    expect(nearest("dry_run", ["dry-run", "force"])).toBe("dry-run");
    expect(nearest("dryrun", ["dry-run", "force"])).toBe("dry-run");
    expect(nearest("rest", ["rest-only", "json"])).toBe("rest-only");
    expect(nearest("banana", ["json", "watch"])).toBeNull();
  });
});
