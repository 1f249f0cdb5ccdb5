// No function in src/master/ is longer than about 80 lines (issue 11): the core reads as named rules,
// each small enough to review on one screen. A simple scan: comments and string/template contents are
// blanked, then every function body (function declarations and expressions, methods, arrow functions
// with a block body) is measured from its header line to its closing brace.
import { describe, expect, test } from "bun:test";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative, resolve } from "node:path";

const MAX_FUNCTION_LINES = 90;
const MASTER = resolve(import.meta.dir, "../../src/master");

/** The source with comments and the contents of strings and templates replaced by spaces (newlines kept). */
export function codeOnly(src: string): string {
  const out = src.split("");
  const blank = (i: number) => {
    if (out[i] !== "\n") out[i] = " ";
  };
  // A stack of template nestings: each entry is the brace depth of a `${` expression inside a template.
  const templates: number[] = [];
  let i = 0;
  const inTemplateText = () => templates.length > 0 && templates[templates.length - 1] === -1;
  while (i < src.length) {
    const c = src[i]!;
    const n = src[i + 1];
    if (inTemplateText()) {
      if (c === "\\") {
        blank(i);
        blank(i + 1);
        i += 2;
      } else if (c === "`") {
        templates.pop();
        i++;
      } else if (c === "$" && n === "{") {
        templates[templates.length - 1] = 0;
        i += 2;
      } else {
        blank(i);
        i++;
      }
      continue;
    }
    if (c === "/" && n === "/") {
      while (i < src.length && src[i] !== "\n") blank(i++);
    } else if (c === "/" && n === "*") {
      const end = src.indexOf("*/", i + 2);
      const stop = end < 0 ? src.length : end + 2;
      while (i < stop) blank(i++);
    } else if (c === '"' || c === "'") {
      i++;
      while (i < src.length && src[i] !== c && src[i] !== "\n") {
        if (src[i] === "\\") blank(i++);
        blank(i++);
      }
      i++;
    } else if (c === "`") {
      templates.push(-1);
      i++;
    } else {
      if (templates.length > 0) {
        const top = templates.length - 1;
        if (c === "{") templates[top]!++;
        else if (c === "}") {
          if (templates[top] === 0) {
            templates[top] = -1; // back in the template's text
            i++;
            continue;
          }
          templates[top]!--;
        }
      }
      i++;
    }
  }
  return out.join("");
}

const KEYWORDS = new Set(["if", "for", "while", "switch", "catch", "return", "else", "do", "with", "typeof", "new", "await", "function"]);

/** Index just past the bracket matching the one at `open`. */
function skipBalanced(code: string, open: number): number {
  const pairs: Record<string, string> = { "(": ")", "{": "}", "[": "]" };
  const stack: string[] = [];
  for (let i = open; i < code.length; i++) {
    const c = code[i]!;
    if (c in pairs) stack.push(pairs[c]!);
    else if (c === ")" || c === "}" || c === "]") {
      stack.pop();
      if (stack.length === 0) return i + 1;
    }
  }
  return code.length;
}

/** After a parameter list: the index of the body's `{`, or -1 when none follows (a call, say). */
function bodyAfterParams(code: string, from: number): number {
  let i = from;
  while (/\s/.test(code[i] ?? "")) i++;
  if (code[i] === "{") return i;
  if (code[i] !== ":") return -1;
  // A return type: object types open after `:`, `|`, `&`, `<`, `,`, `(`; the body after anything else.
  for (i++; i < code.length; i++) {
    const c = code[i]!;
    if (c === ";" || c === "=") return -1;
    if (c === "(" || c === "[") {
      i = skipBalanced(code, i) - 1;
      continue;
    }
    if (c !== "{") continue;
    let j = i - 1;
    while (j > 0 && /\s/.test(code[j]!)) j--;
    if (":|&<,(".includes(code[j]!)) {
      i = skipBalanced(code, i) - 1;
      continue;
    }
    return i;
  }
  return -1;
}

export interface FunctionLength {
  name: string;
  line: number;
  lines: number;
}

/** Every function body in `src` with its length in lines (header line to closing brace). */
export function functionLengths(src: string): FunctionLength[] {
  const code = codeOnly(src);
  const lineAt = (i: number) => code.slice(0, i).split("\n").length;
  const out: FunctionLength[] = [];
  const record = (name: string, headerAt: number, body: number) => {
    const end = skipBalanced(code, body) - 1;
    out.push({ name, line: lineAt(headerAt), lines: lineAt(end) - lineAt(headerAt) + 1 });
  };
  // Named functions, function expressions, methods: a name (or `function`) then a parameter list.
  const named = /(?:\bfunction\b\s*\*?\s*([A-Za-z_$][\w$]*)?|(?<![.\w$])([A-Za-z_$][\w$]*))\s*(?:<[^(){};]*>)?\s*\(/g;
  for (let m = named.exec(code); m; m = named.exec(code)) {
    const isFunction = m[0].startsWith("function");
    const name = m[1] ?? m[2] ?? "(anonymous)";
    if (!isFunction && KEYWORDS.has(name)) continue;
    const paren = m.index + m[0].length - 1;
    const body = bodyAfterParams(code, skipBalanced(code, paren));
    if (body >= 0) record(name, m.index, body);
  }
  // Arrow functions with a block body.
  const arrow = /=>\s*\{/g;
  for (let m = arrow.exec(code); m; m = arrow.exec(code)) record("(arrow)", m.index, m.index + m[0].length - 1);
  return out;
}

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? sources(p) : p.endsWith(".ts") ? [p] : [];
  });
}

describe("function length in src/master/", () => {
  test("the scan finds functions, methods and arrows, and ignores strings, comments and types", () => {
    const body = (n: number) => Array.from({ length: n }, (_, i) => `  x${i}();`).join("\n");
    const src = [
      "// function fake() {",
      `export function long(a: { b: number }): { c: string } {`,
      body(100),
      "  const s = `${'{'} } ${a.b}`;",
      "}",
      "class K {",
      "  private m(x: number): Promise<{ y: 1 }> {",
      body(3),
      "  }",
      "}",
      "const f = (q: number) => {",
      body(2),
      "};",
      "if (long(1)) {",
      "}",
    ].join("\n");
    const found = functionLengths(src).map((f) => `${f.name}@${f.line}:${f.lines}`);
    expect(found).toEqual(["long@2:103", "m@106:5", "(arrow)@112:4"]);
  });

  test(`no function is longer than ${MAX_FUNCTION_LINES} lines`, () => {
    const files = sources(MASTER);
    expect(files.length).toBeGreaterThan(5);
    const tooLong = files.flatMap((f) =>
      functionLengths(readFileSync(f, "utf8"))
        .filter((x) => x.lines > MAX_FUNCTION_LINES)
        .map((x) => `${relative(MASTER, f)}:${x.line} ${x.name} (${x.lines} lines)`),
    );
    expect(tooLong).toEqual([]);
  });
});
