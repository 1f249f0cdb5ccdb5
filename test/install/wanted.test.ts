import { describe, expect, test } from "bun:test";
import { parse } from "yaml";
import { resolveConfig } from "../../src/config/load.ts";
import { lineDiff } from "../../src/install/diff.ts";
import { layoutFor } from "../../src/install/layout.ts";
import { primaryGroup } from "../../src/install/observe.ts";
import { checkPorts, configText, DEFAULT_NODE_CONFIG_TEMPLATE, nodeConfigText, p2pBasePort, wantedState } from "../../src/install/wanted.ts";

const layout = layoutFor("user", "/home/op", "op");

describe("configText", () => {
  test("a fresh config is the commented default with this layout's paths", () => {
    const text = configText(null, 2, { scope: "user", user: "op", keyMode: "rest", layout });
    expect(text).toContain("# Number of runners");
    const c = resolveConfig(parse(text), "/home/op/.config/jorm-master/jorm_master.yaml");
    expect(c.cntRunners).toBe(2);
    expect(c.keyMode).toBe("rest");
    expect(c.systemd.scope).toBe("user");
    expect(c.runners[1]!.binary).toBe("/home/op/.local/bin/jormungandr_runner_1");
    expect(c.runners[1]!.nodeConfig).toBe("/home/op/.config/jorm-master/jorm_runner_1.yaml");
    expect(c.runners[0]!.storage).toBe("/home/op/.local/share/jorm-master/storage_jorm_runner_0");
    expect(c.nodeSecretPath).toBe("/home/op/.config/jorm-master/node_secret.yaml");
  });
  test("an existing config keeps everything, comments included, but cnt_runners", () => {
    const mine = "# my pool\ncnt_runners: 3 # three\nmax_offset: 7\n";
    expect(configText(mine, 3, { scope: "user", user: "op", keyMode: null, layout })).toBe(mine);
    const updated = configText(mine, 2, { scope: "user", user: "op", keyMode: null, layout });
    expect(updated).toContain("# my pool");
    expect(updated).toContain("max_offset: 7");
    expect(parse(updated).cnt_runners).toBe(2);
  });
});

describe("node configs", () => {
  const config = resolveConfig({ cnt_runners: 3, runner_storage: "/s/{id}" }, "/etc/cardano/jorm_master.yaml");
  test("each runner: its REST listen, storage and p2p port base + id; the rest of the template kept", () => {
    const template = "# ITN\np2p:\n  public_address: /ip4/203.0.113.10/tcp/3000\n  listen_address: /ip4/0.0.0.0/tcp/3000\n  trusted_peers:\n    - address: /ip4/52.9.132.248/tcp/3000\n      id: abc\nrest:\n  listen: 0.0.0.0:1\n";
    const base = p2pBasePort(template);
    expect(base).toBe(3000);
    const texts = config.runners.map((r) => nodeConfigText(template, r, base + r.id));
    const parsed = texts.map((t) => parse(t));
    expect(parsed.map((p) => p.rest.listen)).toEqual(["127.0.0.1:3100", "127.0.0.1:3101", "127.0.0.1:3102"]);
    expect(parsed.map((p) => p.storage)).toEqual(["/s/0", "/s/1", "/s/2"]);
    expect(parsed.map((p) => p.p2p.public_address)).toEqual(["/ip4/203.0.113.10/tcp/3000", "/ip4/203.0.113.10/tcp/3001", "/ip4/203.0.113.10/tcp/3002"]);
    expect(parsed.map((p) => p.p2p.listen_address)).toEqual(["/ip4/0.0.0.0/tcp/3000", "/ip4/0.0.0.0/tcp/3001", "/ip4/0.0.0.0/tcp/3002"]);
    // trusted peers' ports are not touched
    expect(parsed[2].p2p.trusted_peers[0].address).toBe("/ip4/52.9.132.248/tcp/3000");
    expect(texts[0]).toContain("# ITN");
  });
  test("the default template gives a loadable minimal config", () => {
    const p = parse(nodeConfigText(DEFAULT_NODE_CONFIG_TEMPLATE, config.runners[1]!, 3001));
    expect(p.rest.listen).toBe("127.0.0.1:3101");
    expect(p.p2p.public_address).toBe("/ip4/127.0.0.1/tcp/3001");
    expect(p.log[0].output).toBe("stderr");
  });
  test("no two runners share a port: p2p colliding with REST is refused", () => {
    expect(() => checkPorts(config, 3000)).not.toThrow();
    expect(() => checkPorts(config, 3099)).toThrow(/port 3100 would be used twice: runner 0's REST and runner 1's p2p/);
    expect(() => checkPorts(config, 65535)).toThrow(/out of range/);
  });
});

describe("lineDiff", () => {
  test("changed lines with a little context", () => {
    const a = ["1", "2", "3", "4", "5", "6", "7", "8"].join("\n");
    const b = ["1", "2", "3", "4", "five", "6", "7", "8"].join("\n");
    expect(lineDiff(a, b)).toBe(["  3", "  4", "- 5", "+ five", "  6", "  7"].join("\n"));
    expect(lineDiff("a\nb", "a\nb")).toBe("");
  });
});

describe("the master unit's group (system scope)", () => {
  const sys = layoutFor("system", "/root", "cardano");
  const want = (runnerGroup?: string) => {
    const { wanted } = wantedState({
      layout: sys,
      scope: "system",
      user: "cardano",
      createUser: false,
      runnerGroup,
      configText: configText(null, 2, { scope: "system", user: "cardano", keyMode: "rest", layout: sys }),
      jormungandr: null,
      genesis: null,
      secret: null,
      nodeConfigTemplate: DEFAULT_NODE_CONFIG_TEMPLATE,
      templateFromOperator: false,
      self: { kind: "in-place" },
    });
    const unit = wanted.entries.find((e) => "path" in e && e.path === `${sys.unitDir}/jorm_master.service`);
    return unit && "content" in unit ? String(unit.content) : "";
  };
  test("a new runner user's own group (useradd --user-group), or an existing user's primary group", () => {
    expect(want()).toMatch(/^Group=cardano$/m);
    expect(want("pool")).toMatch(/^Group=pool$/m);
  });
  test("an existing user's primary group is read with id -gn; an unknown user has none", () => {
    expect(primaryGroup("root")).toBe("root");
    expect(primaryGroup("jm-no-such-user-here")).toBeNull();
  });
});
