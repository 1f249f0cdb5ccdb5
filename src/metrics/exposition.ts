// The Prometheus text exposition format (version 0.0.4), written by hand so the binary needs no
// client library: one HELP and one TYPE line per family, then its samples. Pure.

export const CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

export type MetricType = "counter" | "gauge" | "histogram";

export type Labels = Readonly<Record<string, string>>;

export interface Sample {
  /** Appended to the family name: "_bucket", "_sum", "_count" for histograms, else "" */
  suffix?: string;
  labels?: Labels;
  value: number;
}

export interface Family {
  name: string;
  help: string;
  type: MetricType;
  samples: readonly Sample[];
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/** HELP text escapes backslash and newline; label values also escape the double quote. */
export const escapeHelp = (s: string): string => s.replace(/\\/g, "\\\\").replace(/\n/g, "\\n");
export const escapeLabelValue = (s: string): string => s.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, '\\"');

/** Go's strconv-style float text as Prometheus parses it: +Inf, -Inf, NaN, else a plain number. */
export function formatValue(v: number): string {
  if (Number.isNaN(v)) return "NaN";
  if (v === Infinity) return "+Inf";
  if (v === -Infinity) return "-Inf";
  return String(v);
}

function formatLabels(labels: Labels | undefined): string {
  if (!labels) return "";
  const keys = Object.keys(labels);
  if (keys.length === 0) return "";
  for (const k of keys) if (!LABEL_NAME.test(k) || k.startsWith("__")) throw new Error(`invalid label name ${JSON.stringify(k)}`);
  return `{${keys.map((k) => `${k}="${escapeLabelValue(labels[k]!)}"`).join(",")}}`;
}

export function renderFamilies(families: readonly Family[]): string {
  const out: string[] = [];
  const seen = new Set<string>();
  for (const f of families) {
    if (!NAME.test(f.name)) throw new Error(`invalid metric name ${JSON.stringify(f.name)}`);
    if (seen.has(f.name)) throw new Error(`metric family ${f.name} rendered twice`);
    seen.add(f.name);
    out.push(`# HELP ${f.name} ${escapeHelp(f.help)}`, `# TYPE ${f.name} ${f.type}`);
    for (const s of f.samples) out.push(`${f.name}${s.suffix ?? ""}${formatLabels(s.labels)} ${formatValue(s.value)}`);
  }
  return out.length === 0 ? "" : `${out.join("\n")}\n`;
}

/** A cumulative histogram with fixed upper bounds (seconds, say), as Prometheus keeps it. */
export class Histogram {
  private readonly counts: number[];
  private sum = 0;
  private count = 0;

  constructor(readonly bounds: readonly number[]) {
    for (let i = 1; i < bounds.length; i++) if (!(bounds[i]! > bounds[i - 1]!)) throw new Error("histogram bounds must increase");
    this.counts = bounds.map(() => 0);
  }

  observe(v: number): void {
    this.sum += v;
    this.count++;
    for (let i = 0; i < this.bounds.length; i++) if (v <= this.bounds[i]!) this.counts[i]!++;
  }

  samples(labels: Labels = {}): Sample[] {
    return [
      ...this.bounds.map((le, i) => ({ suffix: "_bucket", labels: { ...labels, le: formatValue(le) }, value: this.counts[i]! })),
      { suffix: "_bucket", labels: { ...labels, le: "+Inf" }, value: this.count },
      // 15 significant digits: what the sum means, without the float noise of adding many decimals
      { suffix: "_sum", labels, value: Number(this.sum.toPrecision(15)) },
      { suffix: "_count", labels, value: this.count },
    ];
  }
}
