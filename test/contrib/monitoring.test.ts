// contrib/: the Grafana dashboard and the Prometheus alerting rules may only use metric names the
// daemon really exports, and every alert has a unit test that both fires it and keeps it silent.
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parse } from "yaml";
import { MasterMetrics } from "../../src/metrics/master.ts";

const ROOT = join(import.meta.dir, "../..");
const read = (p: string) => readFileSync(join(ROOT, p), "utf8");

const families = new MasterMetrics({ version: "t" }).families();
const EXPORTED = new Set(families.map((f) => f.name));
const HISTOGRAMS = new Set(families.filter((f) => f.type === "histogram").map((f) => f.name));

/** Metric names in PromQL text that the daemon does not export. */
function unknownMetrics(exprs: readonly string[]): string[] {
  const bad = new Set<string>();
  for (const e of exprs) {
    for (const [name] of e.matchAll(/\bjorm_master_[a-z0-9_]+/g)) {
      const base = name.replace(/_(bucket|sum|count)$/, "");
      if (EXPORTED.has(name) || (base !== name && HISTOGRAMS.has(base))) continue;
      bad.add(name);
    }
  }
  return [...bad];
}

/** Every string under an "expr" or "query"/"definition" key, anywhere in the JSON. */
function queries(v: unknown, out: string[] = []): string[] {
  if (Array.isArray(v)) for (const x of v) queries(x, out);
  else if (v && typeof v === "object") {
    for (const [k, x] of Object.entries(v)) {
      if (typeof x === "string" && (k === "expr" || k === "definition" || (k === "query" && x.includes("(")))) out.push(x);
      else queries(x, out);
    }
  }
  return out;
}

describe("contrib/grafana/jorm-master.json", () => {
  const dash = JSON.parse(read("contrib/grafana/jorm-master.json"));
  const exprs = queries(dash);

  test("uses only metric names the daemon exports", () => {
    expect(exprs.length).toBeGreaterThan(20);
    expect(unknownMetrics(exprs)).toEqual([]);
  });

  test("the check itself catches a misspelt name", () => {
    expect(unknownMetrics(["jorm_master_key_holder", "jorm_master_tick_duration_seconds_bucket", "jorm_master_epoch_bucket"])).toEqual(["jorm_master_key_holder", "jorm_master_epoch_bucket"]);
  });

  test("shows runners, key holders, warm standbys, slots produced and missed, tick time, failovers", () => {
    const text = exprs.join("\n");
    for (const name of ["jorm_master_runner_up", "jorm_master_runner_signer", "jorm_master_key_holders", "jorm_master_warm_runners", "jorm_master_leader_slots_total", "jorm_master_tick_duration_seconds_bucket", "jorm_master_leader_changes_total", "jorm_master_fences_total"]) {
      expect(text).toContain(name);
    }
  });

  test("importable and provisionable: a data source variable every query uses, unique panel ids, every panel placed", () => {
    expect(dash.templating.list[0]).toMatchObject({ name: "datasource", type: "datasource", query: "prometheus" });
    const uids = new Set<string>();
    const walk = (v: unknown): void => {
      if (Array.isArray(v)) v.forEach(walk);
      else if (v && typeof v === "object") for (const [k, x] of Object.entries(v)) k === "datasource" && typeof x === "object" && x !== null && "uid" in x ? uids.add(String((x as { uid: unknown }).uid)) : walk(x);
    };
    walk(dash);
    expect([...uids]).toEqual(["${datasource}"]);
    const ids = dash.panels.map((p: { id: number }) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
    for (const p of dash.panels) expect(p.gridPos).toMatchObject({ x: expect.any(Number), y: expect.any(Number), w: expect.any(Number), h: expect.any(Number) });
  });
});

describe("contrib/prometheus/alerts.yml", () => {
  const rules = parse(read("contrib/prometheus/alerts.yml")) as { groups: { rules: { alert: string; expr: string; for?: string }[] }[] };
  const alerts = rules.groups.flatMap((g) => g.rules);
  const tests = parse(read("contrib/prometheus/alerts.test.yml")) as { tests: { alert_rule_test: { alertname: string; exp_alerts: unknown[] }[] }[] };
  const cases = tests.tests.flatMap((t) => t.alert_rule_test);

  test("uses only metric names the daemon exports", () => {
    expect(unknownMetrics(alerts.map((a) => a.expr))).toEqual([]);
  });

  test("has the alerts the README lists", () => {
    const exprs = alerts.map((a) => a.expr.replace(/\s+/g, " "));
    for (const e of [
      "jorm_master_key_holders - jorm_master_boundary_coholders > 1",
      // Cluster mode: a host the signer lease does not let sign has no holder by design
      "jorm_master_key_holders == 0 unless on(instance, job) jorm_master_cluster_may_sign == 0",
      "time() - jorm_master_last_observation_timestamp_seconds > 60",
      "jorm_master_warm_runners < 2",
      "sum without (instance) (jorm_master_cluster_may_sign) == 0",
      "sum without (instance) (jorm_master_cluster_may_sign) > 1",
    ])
      expect(exprs).toContain(e);
  });

  test("key-holder alerts wait out a boundary hand-out (event_action 15 s + a few seconds) and a schedule computation", () => {
    const forS = (a: { for?: string }) => (a.for ? Number(/^(\d+)m$/.exec(a.for)?.[1] ?? NaN) * 60 || Number(/^(\d+)s$/.exec(a.for)?.[1]) : 0);
    for (const a of alerts.filter((x) => x.expr.includes("jorm_master_key_holders"))) expect(forS(a)).toBeGreaterThanOrEqual(60);
  });

  test("every alert has a unit test that fires it and one that keeps it silent", () => {
    for (const a of alerts) {
      const mine = cases.filter((c) => c.alertname === a.alert);
      expect(`${a.alert}: ${mine.some((c) => c.exp_alerts.length > 0)}`).toBe(`${a.alert}: true`);
      expect(`${a.alert}: ${mine.some((c) => c.exp_alerts.length === 0)}`).toBe(`${a.alert}: true`);
    }
  });

  const promtool = Bun.which("promtool");
  test.skipIf(promtool === null)("promtool check rules and test rules pass (CI: step promtool_rules)", () => {
    for (const args of [["check", "rules", "alerts.yml"], ["test", "rules", "alerts.test.yml"]]) {
      const r = Bun.spawnSync([promtool!, ...args], { cwd: join(ROOT, "contrib/prometheus") });
      expect(`${args.join(" ")}: ${r.exitCode} ${r.stderr.toString()}`).toBe(`${args.join(" ")}: 0 `);
    }
  });
});
