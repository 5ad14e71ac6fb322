// Small assertion helpers shared by integration tests.
export {
  deepStrictEqual as assertEquals,
  ok as assert,
} from "node:assert/strict";
