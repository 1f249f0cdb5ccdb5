// A small line diff for showing an operator what install would change in a file they edited.
// Files here are short (configs, units), so a plain LCS table is fine.

const CONTEXT_LINES = 2;
const MAX_DIFF_LINES = 60;

export function lineDiff(before: string, after: string): string {
  const a = before.split("\n");
  const b = after.split("\n");
  // lcs[i][j] = length of the longest common subsequence of a[i..] and b[j..]
  const lcs: number[][] = Array.from({ length: a.length + 1 }, () => new Array<number>(b.length + 1).fill(0));
  for (let i = a.length - 1; i >= 0; i--) {
    for (let j = b.length - 1; j >= 0; j--) {
      lcs[i]![j] = a[i] === b[j] ? lcs[i + 1]![j + 1]! + 1 : Math.max(lcs[i + 1]![j]!, lcs[i]![j + 1]!);
    }
  }
  const lines: { mark: " " | "-" | "+"; text: string }[] = [];
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    if (i < a.length && j < b.length && a[i] === b[j]) {
      lines.push({ mark: " ", text: a[i]! });
      i++;
      j++;
    } else if (i < a.length && (j >= b.length || lcs[i + 1]![j]! >= lcs[i]![j + 1]!)) {
      lines.push({ mark: "-", text: a[i]! });
      i++;
    } else {
      lines.push({ mark: "+", text: b[j]! });
      j++;
    }
  }
  // Keep changed lines and a little context around them
  const keep = lines.map(() => false);
  lines.forEach((line, k) => {
    if (line.mark === " ") return;
    for (let c = Math.max(0, k - CONTEXT_LINES); c <= Math.min(lines.length - 1, k + CONTEXT_LINES); c++) keep[c] = true;
  });
  const out: string[] = [];
  let skipped = false;
  lines.forEach((line, k) => {
    if (!keep[k]) {
      skipped = true;
      return;
    }
    if (skipped && out.length > 0) out.push("  ...");
    skipped = false;
    out.push(`${line.mark} ${line.text}`);
  });
  if (out.length > MAX_DIFF_LINES) return [...out.slice(0, MAX_DIFF_LINES), `  ... (${out.length - MAX_DIFF_LINES} more lines)`].join("\n");
  return out.join("\n");
}
