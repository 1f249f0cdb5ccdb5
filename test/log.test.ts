import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ConfigError, EXIT_USAGE, UserError } from "../src/errors.ts";
import { LOG_LEVEL_ENV, effectiveLogLevel, formatJournal, syslogPriority, wantsJournalFormat } from "../src/log.ts";

describe("journal format", () => {
  test("syslog priorities", () => {
    expect([syslogPriority(0), syslogPriority(1), syslogPriority(2), syslogPriority(3), syslogPriority(4), syslogPriority(5)]).toEqual([3, 4, 6, 6, 7, 7]);
  });
  test("one plain line with priority and tag", () => {
    expect(formatJournal({ level: 1, tag: "master", args: ["runner #1 hangs for", 3, "s"], message: undefined })).toBe(
      "<4>[master] runner #1 hangs for 3 s\n",
    );
  });
  test("every line of a multi-line message keeps the priority", () => {
    expect(formatJournal({ level: 0, tag: "", args: ["a\nb"], message: undefined })).toBe("<3>a\n<3>b\n");
  });
  test("journal format under systemd or without a terminal, colours only on a terminal", () => {
    expect(wantsJournalFormat({ JOURNAL_STREAM: "8:123" }, true)).toBe(true);
    expect(wantsJournalFormat({}, false)).toBe(true);
    expect(wantsJournalFormat({}, true)).toBe(false);
  });
});

describe("log level", () => {
  test("--log-level > env > config > info", () => {
    expect(effectiveLogLevel("debug", "warn", { [LOG_LEVEL_ENV]: "error" })).toBe("debug");
    expect(effectiveLogLevel(undefined, "warn", { [LOG_LEVEL_ENV]: "error" })).toBe("error");
    expect(effectiveLogLevel(undefined, "warn", {})).toBe("warn");
    expect(effectiveLogLevel(undefined, undefined, {})).toBe("info");
    expect(effectiveLogLevel("WARN", undefined, {})).toBe("warn");
  });
  test("a bad value is a user error naming where it came from", () => {
    expect(() => effectiveLogLevel("loud", undefined, {})).toThrow(UserError);
    try {
      effectiveLogLevel("loud", undefined, {});
    } catch (e) {
      expect((e as UserError).exitCode).toBe(EXIT_USAGE);
      expect((e as Error).message).toBe('--log-level: expected one of error, warn, info, debug, found "loud"');
    }
    expect(() => effectiveLogLevel(undefined, undefined, { [LOG_LEVEL_ENV]: "x" })).toThrow(ConfigError);
  });
});

// A child process, so the logger decides its format from a real environment and stderr.
const dir = mkdtempSync(join(tmpdir(), "jm-log-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const child = join(dir, "child.ts");
writeFileSync(
  child,
  `import { logger, setupLogging } from ${JSON.stringify(join(import.meta.dir, "../src/log.ts"))};
setupLogging(process.argv[2] || undefined, "info");
logger("master").warn("runner #1 hangs");
logger("node").info("runner #0 running");
logger("node").debug("poll took 3 ms");
`,
);

function runChild(env: Record<string, string>, level = ""): { stdout: string; stderr: string } {
  const { JOURNAL_STREAM: _j, [LOG_LEVEL_ENV]: _l, NO_COLOR: _n, ...base } = process.env;
  const r = Bun.spawnSync(["bun", child, level], { env: { ...base, ...env }, stdout: "pipe", stderr: "pipe" });
  return { stdout: r.stdout.toString(), stderr: r.stderr.toString() };
}

describe("logging in a process", () => {
  test("with JOURNAL_STREAM set a warning is one plain line starting with <4>", () => {
    const { stdout, stderr } = runChild({ JOURNAL_STREAM: "8:4242" });
    expect(stdout).toBe("");
    expect(stderr).toBe("<4>[master] runner #1 hangs\n<6>[node] runner #0 running\n");
    expect(stderr).not.toContain("\x1b[");
  });
  test("--log-level debug shows debug lines at <7>", () => {
    expect(runChild({ JOURNAL_STREAM: "8:4242" }, "debug").stderr).toContain("<7>[node] poll took 3 ms\n");
  });
  test("env JORM_MASTER_LOG_LEVEL overrides the config's level", () => {
    expect(runChild({ JOURNAL_STREAM: "8:4242", [LOG_LEVEL_ENV]: "warn" }).stderr).toBe("<4>[master] runner #1 hangs\n");
  });
  test.skipIf(!Bun.which("script"))("on a TTY the output is coloured, without priority prefixes", () => {
    // script(1) gives the child a pseudo-terminal
    const { JOURNAL_STREAM: _j, [LOG_LEVEL_ENV]: _l, NO_COLOR: _n, ...base } = process.env;
    const r = Bun.spawnSync(["script", "-qfec", `bun ${child}`, "/dev/null"], { env: { ...base, TERM: "xterm-256color" }, stdout: "pipe", stderr: "pipe" });
    const out = r.stdout.toString();
    expect(out).toContain("runner #1 hangs");
    expect(out).toContain("\x1b[");
    expect(out).toContain("WARN");
    expect(out).not.toContain("<4>");
  });
  test.skipIf(!Bun.which("script"))("on a TTY with NO_COLOR set there is no colour", () => {
    const { JOURNAL_STREAM: _j, [LOG_LEVEL_ENV]: _l, ...base } = process.env;
    const r = Bun.spawnSync(["script", "-qfec", `bun ${child}`, "/dev/null"], { env: { ...base, TERM: "xterm-256color", NO_COLOR: "1" }, stdout: "pipe", stderr: "pipe" });
    const out = r.stdout.toString();
    expect(out).toContain("runner #1 hangs");
    expect(out).not.toContain("\x1b[");
  });
});
