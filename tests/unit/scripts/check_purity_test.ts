import { deepStrictEqual as assertEquals } from "node:assert/strict";
import {
  blankCommentsAndStrings,
  findViolations,
  isEdgeFile,
  isSourceFile,
} from "../../../scripts/check_purity.ts";

function rules(source: string): string[] {
  return findViolations(source).map((v) => `${v.line}:${v.column} ${v.rule}`);
}

Deno.test("findViolations() flags every forbidden construct with its place", () => {
  const source = [
    "const t = Date.now();",
    "const r = Math.random();",
    "const p = performance.now();",
    "setTimeout(tick, 10); setInterval(tick, 10);",
    "Deno.exit(1);",
    "async function f() { await g(); }",
  ].join("\n");
  assertEquals(rules(source), [
    "1:11 Date",
    "2:11 Math.random",
    "3:11 performance.now",
    "4:1 setTimeout",
    "4:23 setInterval",
    "5:1 Deno",
    "6:1 async",
    "6:22 await",
  ]);
});

Deno.test("findViolations() accepts pure code", () => {
  const source = [
    "export function step(event: SrpEvent, nowMs: number): SrpAction[] {",
    "  const updateDate = nowMs + this.rng.int(10); // Date.now() is banned",
    '  return [{ type: "arm", timer: "token", afterMs: updateDate }];',
    "}",
  ].join("\n");
  assertEquals(rules(source), []);
});

Deno.test("findViolations() skips line and block comments", () => {
  const source = [
    "// Date.now() and await in a comment",
    "/* setTimeout(f)",
    "   Math.random() */ const x = 1;",
    "/** JSDoc: never `async` here. */",
  ].join("\n");
  assertEquals(rules(source), []);
});

Deno.test("findViolations() skips string contents but not template expressions", () => {
  const source = [
    'const a = "await the Date";',
    "const b = 'Deno.exit \\' setTimeout';",
    "const c = `async ${Date.now()} text`;",
    "const d = `outer ${`inner ${Math.random()}`} await`;",
  ].join("\n");
  assertEquals(rules(source), ["3:20 Date", "4:29 Math.random"]);
});

Deno.test("findViolations() reports code after a comment on the same line", () => {
  assertEquals(rules("/* ok */ await x; // Date"), ["1:10 await"]);
});

Deno.test("blankCommentsAndStrings() keeps line structure", () => {
  const source = "a /* b\nc */ d // e\n'f' `g\nh`";
  const blanked = blankCommentsAndStrings(source);
  assertEquals(blanked.length, source.length);
  assertEquals(blanked.split("\n").length, source.split("\n").length);
  assertEquals(blanked.replace(/\s+/g, ""), "ad''``");
});

Deno.test("isEdgeFile() exempts CLI entry files only", () => {
  assertEquals(isEdgeFile("src/sim/cli.ts"), true);
  assertEquals(isEdgeFile("./src/sim/demo.ts"), true);
  assertEquals(isEdgeFile("engines/cpg/cli.ts"), true);
  assertEquals(isEdgeFile("src/sim/network.ts"), false);
  assertEquals(isEdgeFile("src/totem/demo.ts"), false);
});

Deno.test("isSourceFile() takes code files, not declarations or data", () => {
  assertEquals(isSourceFile("src/totem/srp.ts"), true);
  assertEquals(isSourceFile("src/totem/types.d.ts"), false);
  assertEquals(isSourceFile("src/totem/README.md"), false);
});
