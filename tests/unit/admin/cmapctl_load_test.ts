// `cmapctl -p`: the file format and its errors, without a daemon.
import assert from "node:assert/strict";
import { parseLoadFile } from "../../../src/admin/cmapctl.ts";

Deno.test("cmapctl -p parses sets, deletes, comments and values with spaces", () => {
  const ops = parseLoadFile(
    "f.txt",
    "# comment\n\napp.a u8 7\napp.msg str hello there\n^app.old\n  app.big u64 18446744073709551615\n",
  );
  assert.deepEqual(ops, [
    { line: 3, key: "app.a", value: { type: "uint8", value: 7 } },
    {
      line: 4,
      key: "app.msg",
      value: { type: "string", value: "hello there" },
    },
    { line: 5, key: "app.old", value: null },
    {
      line: 6,
      key: "app.big",
      value: { type: "uint64", value: 18446744073709551615n },
    },
  ]);
});

Deno.test("cmapctl -p names the file and line of the first bad line", () => {
  assert.equal(
    parseLoadFile("f.txt", "app.a u8 1\napp.b u8 300\n"),
    "f.txt:2: app.b: uint8 value must be an integer in 0..255, got 300",
  );
  assert.equal(
    parseLoadFile("f.txt", "app.a\n"),
    'f.txt:1: expected "KEY TYPE VALUE" or "^KEY"',
  );
  assert.equal(
    parseLoadFile("f.txt", "\n\napp.a nosuch 1\n"),
    'f.txt:3: unknown type "nosuch"',
  );
  assert.equal(
    parseLoadFile("f.txt", "^\n"),
    'f.txt:1: "^" must be followed by one key',
  );
});
