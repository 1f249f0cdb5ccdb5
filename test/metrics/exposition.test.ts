import { describe, expect, test } from "bun:test";
import { escapeLabelValue, formatValue, Histogram, renderFamilies } from "../../src/metrics/exposition.ts";

describe("renderFamilies", () => {
  test("writes HELP, TYPE and one line per sample, labels in order, ending with a newline", () => {
    const text = renderFamilies([
      { name: "x_total", help: "Things.", type: "counter", samples: [{ value: 3 }] },
      { name: "y", help: "Per runner.", type: "gauge", samples: [{ labels: { runner: "0", state: "Running" }, value: 1 }, { labels: { runner: "1", state: "Running" }, value: 0 }] },
    ]);
    expect(text).toBe(
      "# HELP x_total Things.\n# TYPE x_total counter\nx_total 3\n" +
        '# HELP y Per runner.\n# TYPE y gauge\ny{runner="0",state="Running"} 1\ny{runner="1",state="Running"} 0\n',
    );
  });

  test("escapes backslash, quote and newline in label values and backslash/newline in HELP", () => {
    expect(escapeLabelValue('a\\b"c\nd')).toBe('a\\\\b\\"c\\nd');
    const text = renderFamilies([{ name: "z", help: "line1\nline2 \\", type: "gauge", samples: [{ labels: { v: 'say "hi"' }, value: 1 }] }]);
    expect(text).toContain("# HELP z line1\\nline2 \\\\\n");
    expect(text).toContain('z{v="say \\"hi\\""} 1');
  });

  test("refuses invalid and duplicate names rather than emitting text Prometheus rejects", () => {
    expect(() => renderFamilies([{ name: "bad-name", help: "", type: "gauge", samples: [] }])).toThrow("invalid metric name");
    expect(() => renderFamilies([{ name: "g", help: "", type: "gauge", samples: [{ labels: { "a-b": "1" }, value: 1 }] }])).toThrow("invalid label name");
    const g = { name: "g", help: "", type: "gauge" as const, samples: [] };
    expect(() => renderFamilies([g, g])).toThrow("rendered twice");
  });

  test("special float values", () => {
    expect([Infinity, -Infinity, NaN, 0.25, 12].map(formatValue)).toEqual(["+Inf", "-Inf", "NaN", "0.25", "12"]);
  });
});

describe("Histogram", () => {
  test("buckets are cumulative, +Inf equals the count, sum adds up", () => {
    const h = new Histogram([0.1, 1]);
    for (const v of [0.05, 0.1, 0.5, 3]) h.observe(v);
    const text = renderFamilies([{ name: "d_seconds", help: "D.", type: "histogram", samples: h.samples() }]);
    expect(text).toContain('d_seconds_bucket{le="0.1"} 2\n');
    expect(text).toContain('d_seconds_bucket{le="1"} 3\n');
    expect(text).toContain('d_seconds_bucket{le="+Inf"} 4\n');
    expect(text).toContain("d_seconds_sum 3.65\n");
    expect(text).toContain("d_seconds_count 4\n");
  });
  test("the sum carries no float noise from adding decimals", () => {
    const h = new Histogram([1]);
    for (let i = 0; i < 8; i++) h.observe(0.01);
    expect(renderFamilies([{ name: "d", help: "", type: "histogram", samples: h.samples() }])).toContain("d_sum 0.08\n");
  });
  test("bounds must increase", () => {
    expect(() => new Histogram([1, 1])).toThrow("increase");
  });
});
