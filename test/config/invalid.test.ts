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
  { name: "zero loop period", yaml: "loop_period: 0\n", fragment: "loop_period: must be at least 0.05 s (50 ms), found 0: " },
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
  // Values the daemon builds URLs and addresses from: each of these passed `config check` and then
  // made every tick throw "Invalid URL" (issue 9, point 3).
  { name: "rest_host as a URL", yaml: "rest_host: http://127.0.0.1\n", fragment: `${FILE}:1:12: rest_host: is a URL; expected only the host, e.g. "127.0.0.1", found "http://127.0.0.1"` },
  { name: "rest_host with a trailing space", yaml: `rest_host: "127.0.0.1 "\n`, fragment: `rest_host: has leading or trailing spaces; expected an IP address (e.g. 127.0.0.1 or ::1), found "127.0.0.1 "` },
  { name: "rest_host with a port", yaml: "rest_host: localhost:3100\n", fragment: `rest_host: contains a port; expected an IP address (e.g. 127.0.0.1 or ::1) without one (ports are set by their own keys), found "localhost:3100"` },
  { name: "rest_host with a space inside", yaml: "rest_host: evil host\n", fragment: `rest_host: contains spaces; expected an IP address (e.g. 127.0.0.1 or ::1), found "evil host"` },
  { name: "rest_host a host name (the node's --rest-listen takes ip:port only)", yaml: "rest_host: localhost\n", fragment: `rest_host: must be an IP address (e.g. 127.0.0.1 or ::1), not a host name: it is also the runners' --rest-listen address` },
  { name: "rest_host an IPv4 address with a leading zero (octal to a URL parser)", yaml: "rest_host: 010.0.0.1\n", fragment: `rest_host: is not a valid IPv4 address (four numbers 0..255 without leading zeros` },
  { name: "rest_host an IPv4 address out of range", yaml: "rest_host: 127.0.0.256\n", fragment: `rest_host: is not a valid IPv4 address` },
  { name: "rest_host an IPv6 address with a zone", yaml: `rest_host: "fe80::1%eth0"\n`, fragment: `rest_host: is an IPv6 address with a zone (%...), which URLs cannot carry` },
  { name: "rest_host broken IPv6", yaml: `rest_host: "[::1::2]"\n`, fragment: `rest_host: is not a valid IPv6 address` },
  { name: "rest_host the any-address", yaml: `rest_host: "0.0.0.0"\n`, fragment: `rest_host: "0.0.0.0" is the any-address` },
  { name: "metrics_listen host with a space", yaml: `metrics_listen: "evil host:9310"\n`, fragment: `metrics_listen: the host contains spaces` },
  { name: "metrics_listen IPv6 without brackets", yaml: `metrics_listen: "::1:9310"\n`, fragment: `metrics_listen: put an IPv6 host in brackets, e.g. "[::1]:9310"` },
  { name: "metrics_listen host not a host name", yaml: `metrics_listen: "exa_mple.com:9310"\n`, fragment: `metrics_listen: the host is not a valid host name` },
  { name: "PoolTool endpoint with a space in the host", yaml: `pooltool:\n  pool_id: "abc"\n  user_id: "u"\n  endp_tip: "https://api.pool tool.io/v0/sharemytip"\n`, fragment: `pooltool.endp_tip: contains spaces; expected an http(s) URL, found "https://api.pool tool.io/v0/sharemytip"` },
  { name: "PoolTool endpoint not http(s)", yaml: `pooltool:\n  pool_id: "abc"\n  user_id: "u"\n  endp_stats: "ftp://pooltool.io/stats.json"\n`, fragment: `pooltool.endp_stats: expected an http(s) URL, found the scheme "ftp:"` },
  { name: "PoolTool endpoint with a bad IPv4 host", yaml: `pooltool:\n  pool_id: "abc"\n  user_id: "u"\n  endp_stats: "https://300.1.1.1/stats.json"\n`, fragment: `pooltool.endp_stats: expected an http(s) URL like` },
  { name: "unit name systemctl would refuse", yaml: `systemd:\n  master_unit: "jorm master.service"\n`, fragment: `systemd.master_unit: is not a valid systemd unit name` },
  { name: "a newline inside a path (would start a new unit file directive)", yaml: `node_secret: "/etc/cardano/x\\nExecStartPre=/bin/sh"\n`, fragment: `node_secret: must not contain control characters (newline, tab, NUL)` },
  // Durations that round to nothing, or are nonsense (issue 9, point 5): the floor or ceiling is named
  { name: "rest_timeout that rounds to 0 ms", yaml: "rest_timeout: 0.0004\n", fragment: `${FILE}:1:15: rest_timeout: must be at least 0.05 s (50 ms), found 0.0004: a shorter deadline makes a healthy but busy node look dead` },
  { name: "rest_timeout of an hour", yaml: "rest_timeout: 3600\n", fragment: "rest_timeout: must be at most 10 s, found 3600: a hung node would hold up every tick" },
  { name: "loop_period that spins", yaml: "loop_period: 0.001\n", fragment: "loop_period: must be at least 0.05 s (50 ms), found 0.001" },
  { name: "max_boot shorter than any boot", yaml: "max_boot: 1\n", fragment: "max_boot: must be at least 10 s, found 1: a node needs more than that" },
  { name: "slot_guard of minutes", yaml: "slot_guard: 120\nevent_action: 300\nstart_before_event: 600\n", fragment: "slot_guard: must be at most 60 s, found 120" },
  { name: "start_before_event beyond a day", yaml: "start_before_event: 1e9\n", fragment: "start_before_event: must be at most 86400 s, found 1000000000: longer than a day" },
  { name: "an infinite duration", yaml: "boot_catch_up: .inf\n", fragment: "boot_catch_up: expected a number, found Infinity" },
  { name: "PoolTool polled every second", yaml: `pooltool:\n  pool_id: "abc"\n  user_id: "u"\n  recv_wait: 1\n`, fragment: "pooltool.recv_wait: must be at least 10 s, found 1" },
  // Bounded before anything iterates over the runners (issue 9, point 13: this hung `config check`)
  { name: "an absurd runner count", yaml: "cnt_runners: 4000000000000000\n", fragment: `${FILE}:1:14: cnt_runners: must be at most 100, found 4000000000000000: each runner is a full node` },
  { name: "an absurd runner count with rest_base_port", yaml: "cnt_runners: 4000000000000000\nrest_base_port: 1000\nmetrics_listen: \"127.0.0.1:1\"\n", fragment: "cnt_runners: must be at most 100" },
  // A "billion laughs" file: yaml refuses to expand it, and that is a config error, not a crash
  {
    name: "YAML alias bomb",
    yaml: ["a: &a [x, x, x, x, x, x, x, x, x]", "b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]", "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]", "d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]", "e: [*d, *d, *d, *d, *d, *d, *d, *d, *d]", ""].join("\n"),
    fragment: `${FILE}:2:8: YAML too many aliases (*name) expanded (over 100): the file looks like an alias bomb`,
  },
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

describe("URLs of the merged sections are parsed as they will be fetched", () => {
  const problemOf = (yaml: string): string => {
    try {
      parseConfigText(yaml, FILE);
    } catch (error) {
      return (error as Error).message;
    }
    return "";
  };
  test("an alert webhook URL that cannot parse is named without quoting it (its path is its secret)", () => {
    const message = problemOf(`alerts:\n  channels:\n    - { name: hook, type: webhook, url: "https://hooks.exa mple.com/services/SECRETPATH" }\n`);
    expect(message).toContain("alerts.channels.0.url: contains spaces; expected an http(s) URL");
    expect(message).not.toContain("SECRETPATH");
    expect(problemOf(`alerts:\n  channels:\n    - { name: hook, type: webhook, url: "https://300.1.1.1/SECRETPATH" }\n`)).toContain("alerts.channels.0.url: expected an http(s) URL like");
  });
  test("a webhook URL may carry credentials (fetch sends them as Basic auth)", () => {
    expect(problemOf(`alerts:\n  channels:\n    - { name: hook, type: webhook, url: "https://u:p@hooks.example.com/x" }\n`)).toBe("");
  });
  test("an etcd endpoint whose host cannot parse", () => {
    expect(problemOf(`cluster:\n  name: a\n  etcd: ["http://300.1.1.1:2379"]\n`)).toContain("cluster.etcd.0: expected an http(s) URL like");
  });
  test("alert and etcd deadlines have floors too", () => {
    expect(problemOf(`alerts:\n  timeout: 0.0004\n`)).toContain("alerts.timeout: must be at least 1 s, found 0.0004: a request to a webhook");
    expect(problemOf(`cluster:\n  name: a\n  etcd: ["http://10.0.0.1:2379"]\n  etcd_timeout: 0.001\n`)).toContain("cluster.etcd_timeout: must be at least 0.05 s (50 ms), found 0.001");
  });
});
