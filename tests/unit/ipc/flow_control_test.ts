import assert from "node:assert/strict";
import { AssertionError } from "../../../src/lib/assert.ts";
import { OutgoingBudget } from "../../../src/ipc/flow_control.ts";

const LIMITS = { bytesMax: 1000, bytesHardMax: 3000, framesMax: 10 };

Deno.test("OutgoingBudget without acks counts only what is still queued", () => {
  const b = new OutgoingBudget(LIMITS, false);
  b.enqueued(600, true);
  b.enqueued(500, false);
  assert.equal(b.pendingBytes, 1100);
  assert.equal(b.overLimit, true);
  assert.equal(b.update(), "on");
  assert.equal(b.update(), null);
  b.written(1, 600, 600);
  assert.equal(b.pendingBytes, 500);
  assert.equal(b.update(), "off");
  assert.equal(b.acked(1, 600), false, "acks were not negotiated");
});

Deno.test("OutgoingBudget with acks counts events until acknowledged", () => {
  const b = new OutgoingBudget(LIMITS, true);
  b.enqueued(700, true);
  b.enqueued(100, false);
  b.written(2, 800, 700);
  assert.equal(b.queuedBytes, 0);
  assert.equal(b.pendingBytes, 700, "the written event is not yet consumed");
  b.enqueued(400, true);
  assert.equal(b.update(), "on");
  assert.equal(b.unackedEvents, 2);
  assert.equal(b.acked(1, 700), true);
  assert.equal(b.pendingBytes, 400);
  assert.equal(b.update(), "off");
});

Deno.test("OutgoingBudget.acked() refuses acks beyond what was sent", () => {
  const b = new OutgoingBudget(LIMITS, true);
  b.enqueued(100, true);
  assert.equal(b.acked(2, 100), false);
  assert.equal(b.acked(1, 101), false);
  assert.equal(b.pendingBytes, 100);
  assert.equal(b.acked(1, 100), true);
  assert.equal(b.pendingBytes, 0);
});

Deno.test("OutgoingBudget enters flow control on queued frames too", () => {
  const b = new OutgoingBudget(LIMITS, false);
  for (let i = 0; i < 11; i++) b.enqueued(16, false);
  assert.equal(b.overLimit, true);
  b.written(1, 16, 0);
  assert.equal(b.overLimit, false);
});

Deno.test("OutgoingBudget.overHardLimit marks a connection to cut", () => {
  const b = new OutgoingBudget(LIMITS, true);
  b.enqueued(3000, true);
  assert.equal(b.overHardLimit, false);
  b.enqueued(1, true);
  assert.equal(b.overHardLimit, true);
});

Deno.test("OutgoingBudget.written() asserts it never goes negative", () => {
  const b = new OutgoingBudget(LIMITS, false);
  b.enqueued(100, false);
  assert.throws(() => b.written(1, 101, 0), AssertionError);
  assert.throws(() => b.written(2, 100, 0), AssertionError);
  assert.throws(
    () => new OutgoingBudget({ ...LIMITS, bytesHardMax: 10 }, false),
    AssertionError,
  );
});
