/**
 * `CpgPort` over Corosync's libcpg through Deno's FFI, so the side-by-side
 * benchmark drives Corosync with the same workload code as denosync.
 * Layouts follow /usr/include/corosync/cpg.h (x86_64): `struct cpg_name` is
 * a u32 length and 128 bytes, `struct cpg_address` three u32, `struct
 * iovec` a pointer and a size_t.
 *
 * libcpg calls back only from inside `cpg_dispatch`, which we call on the
 * JS thread, so plain `UnsafeCallback`s are safe here. Deno cannot poll a
 * raw fd, so libc's `poll` on libcpg's fd runs as a nonblocking FFI call
 * (on a helper thread) and each wake-up dispatches: event driven, no timer
 * granularity in the latency. `cpg_dispatch` keeps a 1 MiB buffer on the
 * stack, beyond V8's default stack limit: agents run with
 * `--v8-flags=--stack-size=4096` (the OS gives the main thread 8 MiB).
 *
 * @module
 */
import type { CpgPort } from "../../src/bench/cpg_port.ts";

const CS_OK = 1;
const CS_ERR_TRY_AGAIN = 6;
const CS_DISPATCH_ALL = 2;
const CPG_TYPE_AGREED = 0;
const NAME_BYTES = 4 + 128;

const SYMBOLS = {
  cpg_initialize: { parameters: ["buffer", "buffer"], result: "i32" },
  cpg_finalize: { parameters: ["u64"], result: "i32" },
  cpg_join: { parameters: ["u64", "buffer"], result: "i32" },
  cpg_leave: { parameters: ["u64", "buffer"], result: "i32" },
  cpg_mcast_joined: {
    parameters: ["u64", "u32", "buffer", "u32"],
    result: "i32",
  },
  cpg_dispatch: { parameters: ["u64", "u32"], result: "i32" },
  cpg_local_get: { parameters: ["u64", "buffer"], result: "i32" },
  cpg_fd_get: { parameters: ["u64", "buffer"], result: "i32" },
} as const;

const LIBC = {
  poll: {
    parameters: ["buffer", "u64", "i32"],
    result: "i32",
    nonblocking: true,
  },
} as const;
const POLLIN = 1;
let libc: Deno.DynamicLibrary<typeof LIBC> | null = null;

type Lib = Deno.DynamicLibrary<typeof SYMBOLS>;
let lib: Lib | null = null;

function open(): Lib {
  lib ??= Deno.dlopen("libcpg.so.4", SYMBOLS);
  return lib;
}

type Deliver = (
  senderNode: number,
  senderPid: number,
  payload: Uint8Array,
) => void;

function nameOf(group: string): Uint8Array<ArrayBuffer> {
  const bytes = new TextEncoder().encode(group);
  if (bytes.length > 128) throw new RangeError("CPG group name over 128 bytes");
  const name = new Uint8Array(NAME_BYTES);
  new DataView(name.buffer).setUint32(0, bytes.length, true);
  name.set(bytes, 4);
  return name;
}

/** A libcpg handle on the local Corosync. */
export class CorosyncPort implements CpgPort {
  readonly engine = "corosync";
  readonly nodeId: number;
  readonly #handle: bigint;
  readonly #callbacks: { close(): void }[];
  #deliver: Deliver = () => {};
  #members = 0;
  #group: Uint8Array<ArrayBuffer> | null = null;
  readonly #iov = new BigUint64Array(2);
  #closed = false;
  #sends = 0;

  private constructor(
    handle: bigint,
    nodeId: number,
    callbacks: { close(): void }[],
    self: { port: CorosyncPort | null },
  ) {
    this.#handle = handle;
    this.nodeId = nodeId;
    this.#callbacks = callbacks;
    self.port = this;
    this.#pollLoop();
  }

  /** Dispatches whenever libcpg's fd is readable, until closed. */
  async #pollLoop(): Promise<void> {
    const fdBuf = new Int32Array(1);
    const rc = open().symbols.cpg_fd_get(this.#handle, fdBuf);
    if (rc !== CS_OK) throw new Error(`cpg_fd_get failed: cs_error ${rc}`);
    libc ??= Deno.dlopen("libc.so.6", LIBC);
    const pfd = new Int32Array(2); // struct pollfd: int fd; short events, revents
    pfd[0] = fdBuf[0];
    while (!this.#closed) {
      new Int16Array(pfd.buffer)[2] = POLLIN;
      new Int16Array(pfd.buffer)[3] = 0;
      await libc.symbols.poll(pfd, 1n, 5);
      // Also on timeout: one wake-up may announce several messages and a
      // dispatch may leave some queued without the fd staying readable.
      this.dispatch();
    }
  }

  /** Connects to the Corosync of this network namespace. */
  static open(): CorosyncPort {
    const l = open();
    const self: { port: CorosyncPort | null } = { port: null };
    const deliver = new Deno.UnsafeCallback(
      {
        parameters: ["u64", "pointer", "u32", "u32", "pointer", "usize"],
        result: "void",
      } as const,
      (_h, _group, nodeid, pid, msg, len) => {
        const p = self.port;
        if (p === null || msg === null) return;
        const view = new Uint8Array(
          Deno.UnsafePointerView.getArrayBuffer(msg, Number(len)),
        );
        p.#deliver(nodeid, pid, view);
      },
    );
    const confchg = new Deno.UnsafeCallback(
      {
        parameters: [
          "u64",
          "pointer",
          "pointer",
          "usize",
          "pointer",
          "usize",
          "pointer",
          "usize",
        ],
        result: "void",
      } as const,
      (_h, _group, _members, count) => {
        if (self.port !== null) self.port.#members = Number(count);
      },
    );
    const callbacks = new BigUint64Array([
      BigInt(Deno.UnsafePointer.value(deliver.pointer)),
      BigInt(Deno.UnsafePointer.value(confchg.pointer)),
    ]);
    const handleBuf = new BigUint64Array(1);
    const rc = l.symbols.cpg_initialize(handleBuf, callbacks);
    if (rc !== CS_OK) {
      deliver.close();
      confchg.close();
      throw new Error(
        `cpg_initialize failed: cs_error ${rc} (is corosync running here?)`,
      );
    }
    const handle = handleBuf[0];
    const nodeBuf = new Uint32Array(1);
    const rc2 = l.symbols.cpg_local_get(handle, nodeBuf);
    if (rc2 !== CS_OK) {
      l.symbols.cpg_finalize(handle);
      throw new Error(`cpg_local_get failed: cs_error ${rc2}`);
    }
    return new CorosyncPort(handle, nodeBuf[0], [deliver, confchg], self);
  }

  /** Runs every callback libcpg has queued. */
  dispatch(): void {
    if (this.#closed) return;
    open().symbols.cpg_dispatch(this.#handle, CS_DISPATCH_ALL);
  }

  async join(group: string): Promise<void> {
    const name = nameOf(group);
    for (;;) {
      const rc = open().symbols.cpg_join(this.#handle, name);
      if (rc === CS_OK) break;
      if (rc !== CS_ERR_TRY_AGAIN) {
        throw new Error(`cpg_join failed: cs_error ${rc}`);
      }
      await new Promise((r) => setTimeout(r, 10));
    }
    this.#group = name;
  }

  send(payload: Uint8Array): Promise<"ok" | "try_again"> {
    this.#iov[0] = BigInt(
      Deno.UnsafePointer.value(
        Deno.UnsafePointer.of(payload as Uint8Array<ArrayBuffer>),
      ),
    );
    this.#iov[1] = BigInt(payload.length);
    const rc = open().symbols.cpg_mcast_joined(
      this.#handle,
      CPG_TYPE_AGREED,
      this.#iov,
      1,
    );
    if (rc === CS_OK) {
      // A pipelined sender yields only microtasks: deliver on the way too.
      if ((++this.#sends & 15) === 0) this.dispatch();
      return Promise.resolve("ok");
    }
    if (rc === CS_ERR_TRY_AGAIN) {
      this.dispatch();
      return Promise.resolve("try_again");
    }
    return Promise.reject(new Error(`cpg_mcast_joined failed: cs_error ${rc}`));
  }

  onDeliver(handler: Deliver): void {
    this.#deliver = handler;
  }

  memberCount(): number {
    return this.#members;
  }

  close(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    this.#closed = true;
    const l = open().symbols;
    if (this.#group !== null) l.cpg_leave(this.#handle, this.#group);
    l.cpg_finalize(this.#handle);
    for (const cb of this.#callbacks) cb.close();
    return Promise.resolve();
  }
}
