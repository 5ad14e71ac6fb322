/**
 * The IPC layer: the Unix-socket server the executive plugs its handler
 * into, the wire codec (PROTOCOL.md) and Corosync's `cs_error_t` codes.
 * The client end is src/client/ipc_connection.ts.
 */
export { CsError, type CsErrorCode, csErrorName } from "./cs_error.ts";
export {
  FRAME_HEADER_BYTES,
  IPC_PROTOCOL_VERSION,
  MESSAGE_BYTES_MAX_DEFAULT,
} from "./codec.ts";
export {
  IpcAddressInUseError,
  IpcClosedError,
  IpcConfigError,
  IpcError,
  IpcNotRunningError,
  IpcPermissionError,
} from "./errors.ts";
export {
  type IpcCloseReason,
  type IpcConnectionInfo,
  type IpcConnectionStats,
  type IpcHandler,
  type IpcLogger,
  type IpcOpenResult,
  type IpcReply,
  IpcServer,
  type IpcServerOptions,
  type IpcServerStats,
} from "./server.ts";
