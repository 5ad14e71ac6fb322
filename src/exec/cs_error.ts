/**
 * Status codes of IPC replies, numbered as Corosync's `cs_error_t`. One
 * table serves the executive, the engines, the IPC server and the clients:
 * it lives beside the wire protocol (src/ipc/cs_error.ts, pure constants).
 *
 * @module
 */
import { CsError, type CsErrorCode, csErrorName } from "../ipc/cs_error.ts";

export { CsError, csErrorName };

/** One status code. */
export type CsStatus = CsErrorCode;
