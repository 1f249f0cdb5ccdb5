// Every way an operator can get the file wrong gives one precise message and exit code 78.
import { describe, expect, test } from "bun:test";
import { ConfigError, EXIT_CONFIG } from "../../src/errors.ts";
import { parseConfigText } from "../../src/config/load.ts";

const FILE = "/etc/cardano/jorm_master.yaml";

const CASES: { name: string; yaml: string; fragment: string }[] = [
  {
    name: "YAML syntax error gives file:line:col, the line and a caret",
    yaml: "cnt_runners: 3\nmax_offset: 5: 4\n",
    fragment: `${FILE}:2:13: YAML syntax error: Nested mappings are not allowed in compact mappings\n  2 | max_offset: 5: 4\n                  ^`,
  },
  {
    name: "duplicate key is a YAML error",
    yaml: "cnt_runners: 3\ncnt_runners: 4\n",
    fragment: `${FILE}:2:1: YAML syntax error: Map keys must be unique`,
  },
  { name: "unknown key suggests the closest", yaml: "max_ofset: 5\n", fragment: `${FILE}:1:1: max_ofset: unknown key; did you mean "max_offset"?` },
  {
    name: "unknown nested key suggests the closest in its section",
    yaml: "pooltool:\n  pool_idd: abc\n",
    fragment: `${FILE}:2:3: pooltool.pool_idd: unknown key; did you mean "pool_id"?`,
  },
  { name: "camelCase key suggests the snake_case one", yaml: "cntRunners: 2\n", fragment: `cntRunners: unknown key; did you mean "cnt_runners"?` },
  { name: "key at the wrong level", yaml: "scope: user\n", fragment: `scope: unknown key here; did you mean "systemd.scope"?` },
  { name: "unknown key far from anything lists the valid keys", yaml: "systemd:\n  colour: blue\n", fragment: "systemd.colour: unknown key; valid keys under systemd: scope, master_unit, runner_unit, user" },
  { name: "wrong type names path, expected and found", yaml: "max_boot: fifteen\n", fragment: `${FILE}:1:11: max_boot: expected a number, found the text "fifteen"` },
  { name: "non-integer count", yaml: "cnt_runners: 2.5\n", fragment: "cnt_runners: expected a whole number, found 2.5" },
  { name: "cnt_runners < 1", yaml: "cnt_runners: 0\n", fragment: `${FILE}:1:14: cnt_runners: must be at least 1, found 0` },
  { name: "empty value", yaml: "cnt_runners:\n", fragment: `${FILE}:1:1: cnt_runners: expected a number, found an empty value` },
  { name: "negative duration", yaml: "boot_catch_up: -3\n", fragment: "boot_catch_up: must be at least 0, found -3" },
  { name: "zero loop period", yaml: "loop_period: 0\n", fragment: "loop_period: must be more than 0, found 0" },
  { name: "enum", yaml: "key_mode: passive\n", fragment: `key_mode: expected one of "boot", "rest", found the text "passive"` },
  { name: "number where text is meant", yaml: "pooltool:\n  pool_id: 1234\n  user_id: u\n", fragment: "pooltool.pool_id: expected a text value, found 1234 (put it in quotes)" },
  { name: "section that is not a mapping", yaml: "systemd: user\n", fragment: `systemd: expected a mapping (nested keys), found the text "user"` },
  { name: "top level that is not a mapping", yaml: "- 1\n- 2\n", fragment: `${FILE}: (top level): expected a mapping of keys like "cnt_runners: 3", found a list` },
  {
    name: "more than 10 runners with rest_prefix",
    yaml: "cnt_runners: 11\n",
    fragment: "cnt_runners: 11 runners do not fit the rest_prefix port scheme (the runner number is the port's last digit, so at most 10); set rest_base_port",
  },
  { name: "computed port out of range (prefix)", yaml: "rest_prefix: 6554\n", fragment: "rest_prefix: runner 2 would listen on port 65542, above 65535" },
  { name: "computed port out of range (base)", yaml: "rest_base_port: 65534\n", fragment: "rest_base_port: runner 2 would listen on port 65536, above 65535" },
  { name: "base port itself out of range", yaml: "rest_base_port: 70000\n", fragment: "rest_base_port: must be at most 65535, found 70000" },
  { name: "metrics port clashes with a runner port", yaml: `metrics_listen: "127.0.0.1:3101"\n`, fragment: "metrics_listen: port 3101 is also the REST port of runner 1; pick another port" },
  { name: "metrics address malformed", yaml: `metrics_listen: "9310"\n`, fragment: `metrics_listen: expected "host:port" (e.g. "127.0.0.1:9310") or "" to switch metrics off, found "9310"` },
  { name: "event_action ≥ start_before_event", yaml: "event_action: 600\nstart_before_event: 600\n", fragment: "event_action: must be less than start_before_event (600 s ≥ 600 s)" },
  { name: "event_action inside the slot guard", yaml: "event_action: 1\nslot_guard: 2\nloop_period: 0.2\n", fragment: "event_action: must be more than slot_guard (1 s ≤ 2 s)" },
  { name: "loop_period ≥ event_action", yaml: "loop_period: 20\n", fragment: "loop_period: must be less than event_action (20 s ≥ 15 s)" },
  { name: "template without {id} for several runners", yaml: `runner_storage: "/srv/storage"\n`, fragment: `runner_storage: must contain {id} when cnt_runners is 3, or every runner would share "/srv/storage"` },
  { name: "unit template without {id}", yaml: `systemd:\n  runner_unit: "runner.service"\n`, fragment: "systemd.runner_unit: must contain {id} when cnt_runners is 3" },
  { name: "unknown placeholder", yaml: `runner_config: "/etc/cardano/runner_{n}.yaml"\n`, fragment: "runner_config: unknown placeholder {n} in" },
  { name: "unit name without .service", yaml: `systemd:\n  master_unit: "jorm_master"\n`, fragment: `systemd.master_unit: must be a unit name ending in ".service", found "jorm_master"` },
  { name: "empty path", yaml: `node_secret: ""\n`, fragment: "node_secret: must not be empty" },
  { name: "half-filled PoolTool", yaml: `pooltool:\n  pool_id: "abc"\n  user_id: "<user_id>"\n`, fragment: `pooltool.user_id: is still the placeholder "<user_id>" while pool_id is set` },
  { name: "PoolTool genesis not a hash", yaml: `pooltool:\n  pool_id: "abc"\n  user_id: "u"\n  genesis: "xyz"\n`, fragment: `pooltool.genesis: expected the 64 hex digit genesis block hash, found "xyz"` },
];

describe("invalid configurations", () => {
  test("there are at least 15 cases", () => expect(CASES.length).toBeGreaterThanOrEqual(15));
  for (const c of CASES) {
    test(c.name, () => {
      let caught: unknown;
      try {
        parseConfigText(c.yaml, FILE);
      } catch (error) {
        caught = error;
      }
      expect(caught).toBeInstanceOf(ConfigError);
      const err = caught as ConfigError;
      expect(err.exitCode).toBe(EXIT_CONFIG);
      expect(err.message).toContain(c.fragment);
    });
  }

  test("a typo in a key name does not hide the other problems", () => {
    let message = "";
    try {
      parseConfigText("max_ofset: 5\ncnt_runners: 12\n", FILE);
    } catch (error) {
      message = (error as Error).message;
    }
    expect(message).toContain(`${FILE}:1:1: max_ofset: unknown key; did you mean "max_offset"?`);
    expect(message).toContain(`${FILE}:2:14: cnt_runners: 12 runners do not fit the rest_prefix port scheme`);
  });

  test("several problems are all reported, in file order", () => {
    let message = "";
    try {
      parseConfigText("max_ofset: 1\ncnt_runners: 0\nkey_mode: x\n", FILE);
    } catch (error) {
      message = (error as Error).message;
    }
    const lines = message.split("\n");
    expect(lines[0]).toStartWith(`${FILE}:1:1: max_ofset`);
    expect(lines[1]).toStartWith(`${FILE}:2:14: cnt_runners`);
    expect(lines[2]).toStartWith(`${FILE}:3:11: key_mode`);
    expect(lines[3]).toBe("The configuration has 3 problems; fix it and run `jorm-master config check` again.");
  });
});
