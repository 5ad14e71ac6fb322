/**
 * Purity gate for the sans-IO core (STYLE.md section 1): files under
 * src/totem, src/exec, src/sim and engines/ must not read the clock, draw
 * unseeded randomness, arm real timers, touch `Deno.*` or suspend with
 * `async`/`await`, because then no seed could replay a run. CLI entry files
 * (any `cli.ts`, and src/sim/demo.ts) are edges and are skipped.
 *
 * Usage: deno run --allow-read scripts/check_purity.ts [ROOT...]
 *
 * @module
 */

/** Folders that hold pure code, relative to the repository root. */
export const PURE_ROOTS: readonly string[] = [
  "src/totem",
  "src/exec",
  "src/sim",
  "engines",
];

/** Edge files inside the pure folders, relative to the repository root. */
export const EDGE_FILES: readonly string[] = ["src/sim/demo.ts"];

/** One forbidden construct and why it is forbidden. */
export interface Rule {
  readonly name: string;
  readonly pattern: RegExp;
  readonly why: string;
}

/** The forbidden constructs. Patterns run on code with comments and strings blanked. */
export const RULES: readonly Rule[] = [
  { name: "Deno", pattern: /\bDeno\b/g, why: "I/O belongs to the drivers" },
  { name: "Date", pattern: /\bDate\b/g, why: "take nowMs from the driver" },
  {
    name: "performance.now",
    pattern: /\bperformance\s*\.\s*now\b/g,
    why: "take nowMs from the driver",
  },
  {
    name: "Math.random",
    pattern: /\bMath\s*\.\s*random\b/g,
    why: "draw from the injected Prng",
  },
  {
    name: "setTimeout",
    pattern: /\bsetTimeout\b/g,
    why: "return an `arm` action instead",
  },
  {
    name: "setInterval",
    pattern: /\bsetInterval\b/g,
    why: "return an `arm` action instead",
  },
  {
    name: "async",
    pattern: /\basync\b/g,
    why: "the core is synchronous: events in, actions out",
  },
  {
    name: "await",
    pattern: /\bawait\b/g,
    why: "an await lets another event run between a check and its use",
  },
];

/** One use of a forbidden construct. `line` and `column` are 1-based. */
export interface Violation {
  readonly line: number;
  readonly column: number;
  readonly rule: string;
  readonly why: string;
}

/**
 * Returns `source` with comments and the contents of string and template
 * literals replaced by spaces; newlines and every other character keep their
 * place, so line and column numbers still match the original. `${…}`
 * expressions inside templates are kept as code. Regular-expression literals
 * are not recognised (none of the rules needs it).
 */
export function blankCommentsAndStrings(source: string): string {
  const out = source.split("");
  // Each entry is the brace depth at which a template `${` was opened.
  const templateStack: number[] = [];
  let braceDepth = 0;
  let i = 0;
  const blank = (from: number, to: number): void => {
    for (let k = from; k < to; k++) {
      if (out[k] !== "\n") out[k] = " ";
    }
  };
  // Scans template text from i (just after "`" or "}") to its end or to "${".
  const scanTemplateText = (): void => {
    const start = i;
    while (i < source.length) {
      const c = source[i];
      if (c === "\\") {
        i += 2;
      } else if (c === "`") {
        blank(start, i);
        i++;
        return;
      } else if (c === "$" && source[i + 1] === "{") {
        blank(start, i);
        templateStack.push(braceDepth);
        braceDepth++;
        i += 2;
        return;
      } else {
        i++;
      }
    }
    blank(start, source.length);
  };

  while (i < source.length) {
    const c = source[i];
    const next = source[i + 1];
    if (c === "/" && next === "/") {
      const end = source.indexOf("\n", i);
      const stop = end === -1 ? source.length : end;
      blank(i, stop);
      i = stop;
    } else if (c === "/" && next === "*") {
      const end = source.indexOf("*/", i + 2);
      const stop = end === -1 ? source.length : end + 2;
      blank(i, stop);
      i = stop;
    } else if (c === '"' || c === "'") {
      const start = i + 1;
      i++;
      while (i < source.length && source[i] !== c && source[i] !== "\n") {
        i += source[i] === "\\" ? 2 : 1;
      }
      blank(start, Math.min(i, source.length));
      i++;
    } else if (c === "`") {
      i++;
      scanTemplateText();
    } else if (c === "{") {
      braceDepth++;
      i++;
    } else if (c === "}") {
      braceDepth--;
      i++;
      if (
        templateStack.length > 0 &&
        templateStack[templateStack.length - 1] === braceDepth
      ) {
        templateStack.pop();
        scanTemplateText();
      }
    } else {
      i++;
    }
  }
  return out.join("");
}

/** Every use of a forbidden construct in `source`, in source order. */
export function findViolations(source: string): Violation[] {
  const lines = blankCommentsAndStrings(source).split("\n");
  const found: Violation[] = [];
  lines.forEach((text, index) => {
    for (const rule of RULES) {
      for (const match of text.matchAll(rule.pattern)) {
        found.push({
          line: index + 1,
          column: (match.index ?? 0) + 1,
          rule: rule.name,
          why: rule.why,
        });
      }
    }
  });
  return found.sort((a, b) => a.line - b.line || a.column - b.column);
}

/** True for files the gate skips: CLI entry points and the listed edges. */
export function isEdgeFile(path: string): boolean {
  const normalized = path.replaceAll("\\", "/").replace(/^\.\//, "");
  const base = normalized.slice(normalized.lastIndexOf("/") + 1);
  return base === "cli.ts" || EDGE_FILES.includes(normalized);
}

/** True for the source files the gate reads. */
export function isSourceFile(path: string): boolean {
  return /\.(ts|tsx|mts|js|mjs)$/.test(path) && !path.endsWith(".d.ts");
}

async function* walk(dir: string): AsyncGenerator<string> {
  let entries: Deno.DirEntry[];
  try {
    entries = await Array.fromAsync(Deno.readDir(dir));
  } catch (error) {
    // A pure root that does not exist yet has nothing to check.
    if (error instanceof Deno.errors.NotFound) return;
    throw error;
  }
  entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const entry of entries) {
    const path = `${dir}/${entry.name}`;
    if (entry.isDirectory) yield* walk(path);
    else if (entry.isFile && isSourceFile(path)) yield path;
  }
}

/**
 * Checks every pure file under `roots` (paths relative to the current
 * directory) and returns the report lines, one per violation.
 */
export async function checkRoots(
  roots: readonly string[],
): Promise<{ files: number; report: string[] }> {
  let files = 0;
  const report: string[] = [];
  for (const root of roots) {
    for await (const path of walk(root)) {
      if (isEdgeFile(path)) continue;
      files++;
      const source = await Deno.readTextFile(path);
      for (const v of findViolations(source)) {
        report.push(`${path}:${v.line}:${v.column}: uses ${v.rule} (${v.why})`);
      }
    }
  }
  return { files, report };
}

if (import.meta.main) {
  // Default roots are relative to the repository root, wherever we run from.
  if (Deno.args.length === 0) {
    Deno.chdir(decodeURIComponent(new URL("..", import.meta.url).pathname));
  }
  const roots = Deno.args.length > 0 ? Deno.args : PURE_ROOTS;
  const { files, report } = await checkRoots(roots);
  if (report.length > 0) {
    for (const line of report) console.error(line);
    console.error(
      `check_purity: ${report.length} violation(s) in pure code; move I/O, time and timers to a driver (STYLE.md section 1)`,
    );
    Deno.exit(1);
  }
  console.log(`check_purity: ${files} pure file(s) clean`);
}
