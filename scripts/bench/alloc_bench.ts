/**
 * What a small buffer costs: `deno bench -A scripts/bench/alloc_bench.ts`.
 * A new ArrayBuffer (any `new Uint8Array(n)`, `slice`, `TextEncoder.encode`)
 * costs about a microsecond in Deno 2.9 on our machines, a view of a shared
 * chunk tens of nanoseconds (src/lib/small_bytes.ts). The per-message
 * headers of an mcast and of a delivery come from shared chunks; these rows
 * show what that saves, so a regression to own buffers shows up.
 */
import { ByteWriter } from "../../src/exec/bytes.ts";
import { encodeEngineHeader } from "../../src/exec/wire.ts";
import { smallBytes } from "../../src/lib/small_bytes.ts";
import { encodeCpgCallbackParts } from "../../engines/cpg/ipc.ts";
import { encodeCpgMessageParts } from "../../engines/cpg/wire.ts";

const MESSAGE = new Uint8Array(64);
let sink = 0;

Deno.bench(
  "100 x new Uint8Array(32)",
  { group: "buffer", baseline: true },
  () => {
    for (let i = 0; i < 100; i++) sink ^= new Uint8Array(32).length;
  },
);
Deno.bench("100 x smallBytes(32)", { group: "buffer" }, () => {
  for (let i = 0; i < 100; i++) sink ^= smallBytes(32).length;
});

Deno.bench("100 x 8-byte header, own buffer", {
  group: "header",
  baseline: true,
}, () => {
  for (let i = 0; i < 100; i++) {
    sink ^= new ByteWriter(8).u32(0x20001).u32(100).finish().length;
  }
});
Deno.bench("100 x 8-byte header, transient", { group: "header" }, () => {
  for (let i = 0; i < 100; i++) {
    sink ^= ByteWriter.transient(8).u32(0x20001).u32(100).finish().length;
  }
});

Deno.bench("100 x mcast headers (engine + CPG)", { group: "message" }, () => {
  for (let i = 0; i < 100; i++) {
    const parts = encodeCpgMessageParts({
      type: "mcast",
      group: "bench",
      pid: 100,
      guarantee: "agreed",
      message: MESSAGE,
    });
    sink ^= parts[0].length + encodeEngineHeader(2, 1, 100).length;
  }
});
Deno.bench("100 x delivery callback header", { group: "message" }, () => {
  for (let i = 0; i < 100; i++) {
    sink ^= encodeCpgCallbackParts({
      kind: "deliver",
      group: "bench",
      nodeId: 1,
      pid: 100,
      message: MESSAGE,
    })[0].length;
  }
});

addEventListener("unload", () => {
  if (sink === 0x7fff_ffff) console.log(sink);
});
