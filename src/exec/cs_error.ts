/**
 * Status codes of IPC replies, numbered as Corosync's `cs_error_t`
 * (`include/corosync/corotypes.h`) so clients in other languages and admin
 * tools can map them the usual way.
 *
 * @module
 */

/** Corosync `cs_error_t` values used on the IPC wire. */
export const CsError = {
  OK: 1,
  LIBRARY: 2,
  VERSION: 3,
  INIT: 4,
  TIMEOUT: 5,
  /** The request cannot be served now (sync in progress, queue full): retry. */
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

/** One status code. */
export type CsStatus = (typeof CsError)[keyof typeof CsError];

/** `CS_ERR_TRY_AGAIN`-style name of a status code, for logs and tools. */
export function csErrorName(status: number): string {
  for (const [name, value] of Object.entries(CsError)) {
    if (value === status) return name === "OK" ? "CS_OK" : `CS_ERR_${name}`;
  }
  return `CS_ERR_UNKNOWN(${status})`;
}
