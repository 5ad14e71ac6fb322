import {
  deepStrictEqual as assertEquals,
  notDeepStrictEqual as assertNotDeepEqual,
  ok as assert,
} from "node:assert/strict";
import { Prng } from "../../../src/lib/prng.ts";

function draw(seed: number, count: number): number[] {
  const rng = new Prng(seed);
  return Array.from({ length: count }, () => rng.nextU32());
}

Deno.test("Prng replays the same stream for the same seed", () => {
  for (const seed of [0, 1, 42, 0x7FFF_FFFF, 0xFFFF_FFFF]) {
    assertEquals(draw(seed, 100), draw(seed, 100), `seed ${seed}`);
  }
});

Deno.test("Prng gives different streams for different seeds", () => {
  const streams = [0, 1, 2, 3, 1000, 0xFFFF_FFFF].map((seed) =>
    draw(seed, 8).join(",")
  );
  assertEquals(new Set(streams).size, streams.length);
  assertNotDeepEqual(draw(1, 8), draw(2, 8));
});

Deno.test("Prng takes seeds modulo 2^32", () => {
  assertEquals(draw(-1, 16), draw(0xFFFF_FFFF, 16));
  assertEquals(draw(2 ** 32 + 7, 16), draw(7, 16));
});

Deno.test("Prng.nextU32() stays in u32 range", () => {
  const rng = new Prng(99);
  for (let i = 0; i < 10_000; i++) {
    const x = rng.nextU32();
    assert(
      Number.isInteger(x) && x >= 0 && x <= 0xFFFF_FFFF,
      `nextU32 gave ${x}`,
    );
  }
});

Deno.test("Prng.float() stays in [0, 1) and spreads over it", () => {
  const rng = new Prng(7);
  const buckets = new Array<number>(10).fill(0);
  for (let i = 0; i < 10_000; i++) {
    const x = rng.float();
    assert(x >= 0 && x < 1, `float gave ${x}`);
    buckets[Math.floor(x * 10)]++;
  }
  // Each tenth expects 1000; 800 is far outside a fair generator's spread.
  for (const count of buckets) {
    assert(count > 800 && count < 1200, `buckets ${buckets}`);
  }
});

Deno.test("Prng.int() stays in [0, bound) and reaches every value", () => {
  const rng = new Prng(3);
  for (const bound of [1, 2, 3, 7, 100]) {
    const seen = new Set<number>();
    for (let i = 0; i < 2_000; i++) {
      const x = rng.int(bound);
      assert(
        Number.isInteger(x) && x >= 0 && x < bound,
        `int(${bound}) gave ${x}`,
      );
      seen.add(x);
    }
    assertEquals(seen.size, bound, `int(${bound}) reached ${[...seen]}`);
  }
});

Deno.test("Prng.chance() honours 0, 1 and frequencies in between", () => {
  const rng = new Prng(11);
  let hits = 0;
  for (let i = 0; i < 10_000; i++) {
    assertEquals(rng.chance(0), false);
    assertEquals(rng.chance(1), true);
    if (rng.chance(0.25)) hits++;
  }
  assert(hits > 2_200 && hits < 2_800, `chance(0.25) hit ${hits} of 10000`);
});

Deno.test("Prng.pick() returns elements of the array", () => {
  const rng = new Prng(5);
  const items = ["a", "b", "c"] as const;
  const seen = new Set<string>();
  for (let i = 0; i < 300; i++) {
    const x = rng.pick(items);
    assert(items.includes(x));
    seen.add(x);
  }
  assertEquals(seen.size, items.length);
});

Deno.test("Prng.fork() is deterministic and independent of its parent", () => {
  const a = new Prng(21);
  const b = new Prng(21);
  const childA = a.fork();
  const childB = b.fork();
  assertEquals(draw2(childA, 16), draw2(childB, 16));
  // The parent keeps its own stream after forking.
  assertEquals(draw2(a, 16), draw2(b, 16));
  assertNotDeepEqual(draw2(new Prng(21).fork(), 16), draw(21, 16));
});

function draw2(rng: Prng, count: number): number[] {
  return Array.from({ length: count }, () => rng.nextU32());
}
