/**
 * Corosync's `cs_error_t` (include/corosync/corotypes.h), used as the status of
 * every IPC response and the code of every IPC ERROR frame. The numbers are on
 * the wire: they never change and are never reused. Keys drop the `CS_ERR_`
 * prefix (`CsError.TRY_AGAIN` is CS_ERR_TRY_AGAIN), as src/exec/cs_error.ts
 * does, so one can re-export the other.
 */
export const CsError = {
  OK: 1,
  LIBRARY: 2,
  VERSION: 3,
  INIT: 4,
  TIMEOUT: 5,
  TRY_AGAIN: 6,
  INVALID_PARAM: 7,
  NO_MEMORY: 8,
  BAD_HANDLE: 9,
  BUSY: 10,
  ACCESS: 11,
  NOT_EXIST: 12,
  NAME_TOO_LONG: 13,
  EXIST: 14,
  NO_SPACE: 15,
  INTERRUPT: 16,
  NAME_NOT_FOUND: 17,
  NO_RESOURCES: 18,
  NOT_SUPPORTED: 19,
  BAD_OPERATION: 20,
  FAILED_OPERATION: 21,
  MESSAGE_ERROR: 22,
  QUEUE_FULL: 23,
  QUEUE_NOT_AVAILABLE: 24,
  BAD_FLAGS: 25,
  TOO_BIG: 26,
  NO_SECTIONS: 27,
  CONTEXT_NOT_FOUND: 28,
  TOO_MANY_GROUPS: 30,
  SECURITY: 100,
} as const;

/** One `cs_error_t` value. Unknown numbers from a peer stay plain numbers. */
export type CsErrorCode = (typeof CsError)[keyof typeof CsError];

const NAMES = new Map<number, string>(
  Object.entries(CsError).map((
    [name, code],
  ) => [code, name === "OK" ? "CS_OK" : `CS_ERR_${name}`]),
);

/** `CS_ERR_TRY_AGAIN` for 6; `cs_error_t 77` for a number we do not know. */
export function csErrorName(code: number): string {
  return NAMES.get(code) ?? `cs_error_t ${code}`;
}
