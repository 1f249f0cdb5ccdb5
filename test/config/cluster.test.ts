// The cluster section (issue 13): absent means one server and no etcd; present, every mistake is
// reported with file:line like the rest of the file.
import { describe, expect, test } from "bun:test";
import { ConfigError } from "../../src/errors.ts";
import { defaultConfig, parseConfigText } from "../../src/config/load.ts";

const FILE = "/etc/cardano/jorm_master.yaml";
const ETCD = '["http://10.0.0.1:2379", "http://10.0.0.2:2379/", "https://etcd-3.lan:2379"]';

function problemsOf(yaml: string): string {
  try {
    parseConfigText(yaml, FILE);
  } catch (error) {
    if (error instanceof ConfigError) return error.message;
    throw error;
  }
  throw new Error("expected a ConfigError");
}

describe("cluster section", () => {
  test("absent: one server, no cluster (the defaults say so too)", () => {
    expect(parseConfigText("cnt_runners: 3\n", FILE).config.cluster).toBeNull();
    expect(defaultConfig().cluster).toBeNull();
    expect(parseConfigText("cluster:\n", FILE).config.cluster).toBeNull();
  });

  test("name and etcd given: the rest defaults; URLs and prefix lose trailing slashes", () => {
    const { config } = parseConfigText(`cluster:\n  name: host-a\n  etcd: ${ETCD}\n`, FILE);
    expect(config.cluster).toEqual({
      name: "host-a",
      etcdEndpoints: ["http://10.0.0.1:2379", "http://10.0.0.2:2379", "https://etcd-3.lan:2379"],
      prefix: "/jorm-master",
      leaseTtlS: 5,
      etcdTimeoutMs: 2_000,
    });
  });

  test("config check says what the daemon enforces with the section and that the other hosts' standbys are warm by grant", () => {
    const { notes } = parseConfigText(`cluster:\n  name: host-a\n  etcd: ${ETCD}\n`, FILE);
    expect(notes.some((n) => n.includes("signs only while it holds the etcd signer lease") && n.includes("on the signing host's grant"))).toBe(true);
  });

  test("every key set", () => {
    const yaml = `cluster:\n  name: b\n  etcd: ["http://127.0.0.1:23791"]\n  prefix: /pools/abc/\n  lease_ttl: 10\n  etcd_timeout: 1.5\n`;
    expect(parseConfigText(yaml, FILE).config.cluster).toEqual({
      name: "b",
      etcdEndpoints: ["http://127.0.0.1:23791"],
      prefix: "/pools/abc",
      leaseTtlS: 10,
      etcdTimeoutMs: 1_500,
    });
  });

  const CASES: [string, string, string][] = [
    ["name is required", `cluster:\n  etcd: ${ETCD}\n`, "cluster.name"],
    ["etcd is required", "cluster:\n  name: a\n", "cluster.etcd"],
    ["an empty etcd list", "cluster:\n  name: a\n  etcd: []\n", "cluster.etcd"],
    ["a lease below etcd's minimum", `cluster:\n  name: a\n  etcd: ${ETCD}\n  lease_ttl: 1\n`, "cluster.lease_ttl: must be at least 2"],
    ["a fractional lease", `cluster:\n  name: a\n  etcd: ${ETCD}\n  lease_ttl: 2.5\n`, "cluster.lease_ttl: expected a whole number"],
    ["a typo in a key", `cluster:\n  name: a\n  etcd: ${ETCD}\n  lease_tll: 5\n`, `${FILE}:4:3: cluster.lease_tll: unknown key; did you mean "lease_ttl"?`],
    ["a URL without scheme", 'cluster:\n  name: a\n  etcd: ["10.0.0.1:2379"]\n', `cluster.etcd.0: expected an etcd client URL like "http://10.0.0.1:2379", found "10.0.0.1:2379"`],
    ["a URL with a path", 'cluster:\n  name: a\n  etcd: ["http://10.0.0.1:2379/v3"]\n', "cluster.etcd.0: expected an etcd client URL"],
    ["a URL twice", 'cluster:\n  name: a\n  etcd: ["http://e:2379", "http://e:2379/"]\n', `cluster.etcd.1: "http://e:2379/" is listed twice`],
    ["a name with a slash", `cluster:\n  name: a/b\n  etcd: ${ETCD}\n`, "cluster.name: must be a host name"],
    ["a relative prefix", `cluster:\n  name: a\n  etcd: ${ETCD}\n  prefix: jorm\n`, `cluster.prefix: must be a key path starting with "/"`],
    ["the root as prefix", `cluster:\n  name: a\n  etcd: ${ETCD}\n  prefix: /\n`, "cluster.prefix: must be a key path"],
    [
      "an etcd call deadline longer than half the lease",
      `cluster:\n  name: a\n  etcd: ${ETCD}\n  lease_ttl: 3\n  etcd_timeout: 2\n`,
      "cluster.etcd_timeout: must be at most half of lease_ttl (2 s > 3 s / 2)",
    ],
  ];
  for (const [name, yaml, fragment] of CASES) {
    test(name, () => expect(problemsOf(yaml)).toContain(fragment));
  }
});
