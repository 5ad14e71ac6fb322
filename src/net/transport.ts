/**
 * The UDP transport edge (ARCHITECTURE.md, "Edges are thin"): it turns
 * datagrams into frames for the Totem core and the core's `transmit` actions
 * into datagrams, as knet does for Corosync 3. Nothing of the Totem protocol
 * lives here.
 *
 * - One socket per configured local link address (`Deno.listenDatagram`,
 *   never node:dgram: DENO_NOTES.md section 3). In udp (multicast) mode each
 *   link also gets a socket bound to the group, joined on the link's local
 *   address; "all" then goes out as one datagram to the group per link.
 * - Every datagram carries the transport header of wire.ts. Without crypto
 *   the header's sender is trusted only when the datagram came from that
 *   node's configured address and port on that link (Corosync's
 *   `block_unlisted_ips`); with crypto the sealed header authenticates the
 *   sender, which must equal the transport header's sender.
 * - Heartbeats and link choice are the pure `LinkTable` (links.ts).
 * - Sends are fire-and-forget for the core. A datagram leaves at once with
 *   libc's `sendto` while nothing is queued on its link (direct_send.ts);
 *   otherwise, or without FFI, it waits in a bounded queue drained by one
 *   loop awaiting `sock.send` (backpressure, DENO_NOTES.md section 3).
 *   Heartbeats have their own small lane so a full data queue cannot take
 *   a link down. A full queue drops and counts: Totem retransmits, and an
 *   unbounded queue would hide overload.
 * - Bad datagrams are counted by reason and dropped; they never reach
 *   `onFrame` and never end a receive loop (STYLE.md section 6).
 *
 * Limits: the multicast TTL stays at the kernel default (1) and the outgoing
 * interface follows the routing table (Deno has no IP_MULTICAST_IF). For
 * IPv4, Linux sends multicast out of the device owning the socket's bound
 * source address, which is the link's address. IPv6 multicast joins the
 * group on the default interface (index 0).
 *
 * @module
 */
import { assert, unreachable } from "../lib/assert.ts";
import { smallCopy } from "../lib/small_bytes.ts";
import {
  type LinkChange,
  type LinkMode,
  type LinkSnapshot,
  LinkTable,
} from "./links.ts";
import {
  DATAGRAM_BYTES_MAX,
  decodePacket,
  decodePingBody,
  encodePacket,
  encodePingBody,
  type PacketKind,
  WIRE_LINKS_MAX,
} from "./wire.ts";
import {
  raiseReceiveBuffer,
  RECEIVE_BUFFER_BYTES as SOCKET_RECEIVE_BUFFER_BYTES,
  type ReceiveBufferResult,
} from "./socket_buffer.ts";
import {
  type DirectSender,
  openDirectSender,
  sockaddrFor,
} from "./direct_send.ts";

export type { LinkChange, LinkChangeReason, LinkMode } from "./links.ts";

/** Heartbeat period when none is configured (`knet_ping_interval`). */
export const PING_INTERVAL_MS_DEFAULT = 200;
/** Ping timeout, in heartbeat periods, when none is configured. */
export const PING_TIMEOUT_INTERVALS_DEFAULT = 3;
/** Datagrams each link's data queue holds before sends are dropped. */
export const SEND_QUEUE_MAX_DEFAULT = 1024;
/** Datagrams each link's heartbeat lane holds. */
export const CONTROL_QUEUE_MAX = 256;
/** Period of the test hook's block-file poll. */
export const BLOCK_POLL_MS = 100;

const RECEIVE_BUFFER_BYTES = 65_536;
/**
 * Frames at least this large are handed on in their receive buffer instead
 * of copied: a new 64 KiB buffer costs about what copying this much does.
 */
const HAND_OVER_BYTES_MIN = 16_384;
/** Pause after an unexpected receive error, so a persistent one cannot spin. */
const RECEIVE_ERROR_PAUSE_MS = 10;

/** One configured node: its address on each link. */
export interface TransportNode {
  nodeId: number;
  /** IPv4 or IPv6 literal per link number 0..7; undefined: not on that link. */
  addrs: readonly (string | undefined)[];
  /**
   * Per-link port override for this node. Corosync has one port per link for
   * every node; this lets several nodes share one address (tests and demos
   * on ::1, which is the only IPv6 loopback address).
   */
  ports?: readonly (number | undefined)[];
}

/** Frame sealing as crypto.ts's `FrameSealer`/`FrameOpener` provide it. */
export interface TransportCrypto {
  /** Returns the sealed datagram for `plaintext`. */
  seal(plaintext: Uint8Array): Uint8Array;
  /**
   * Authenticates and decrypts; never throws. `plaintext` may be a view of
   * `bytes` (decrypted in place): the transport treats it as it treats a
   * clear frame in its receive buffer.
   */
  open(
    bytes: Uint8Array,
  ):
    | { ok: true; sender: number; plaintext: Uint8Array }
    | { ok: false; reason: string };
}

/** Construction parameters of a `Transport`. */
export interface TransportOptions {
  /** This node's nodeid; its addresses are taken from `nodes`. */
  nodeId: number;
  /** The nodelist, this node included. */
  nodes: readonly TransportNode[];
  /** UDP port per link number (`mcastport`), or one port for every link. */
  port: number | readonly (number | undefined)[];
  /** `udpu`: unicast to every node; `udp`: "all" goes to a multicast group. */
  mode: "udpu" | "udp";
  /** udp mode: multicast group per link number, or one for every link. */
  mcastAddr?: string | readonly (string | undefined)[];
  /** `totem.link_mode`. */
  linkMode: LinkMode;
  /** `knet_link_priority` per link number (default 1; higher wins). */
  linkPriorities?: readonly (number | undefined)[];
  /** Heartbeat period; default `PING_INTERVAL_MS_DEFAULT`. */
  pingIntervalMs?: number;
  /** Silence that takes a link down; default 3 heartbeat periods. */
  pingTimeoutMs?: number;
  /** Consecutive pongs that bring a link up (`knet_pong_count`); default 1. */
  pongCount?: number;
  /**
   * With crypto, whether datagrams must also come from the sender's
   * configured address (default true). Without crypto the address is the
   * only proof of the sender, so it is always checked.
   */
  blockUnlistedIps?: boolean;
  /** Data datagrams queued per link before drops; default 1024. */
  sendQueueMax?: number;
  /**
   * Kernel receive buffer to ask for on every socket (socket_buffer.ts);
   * default `SOCKET_RECEIVE_BUFFER_BYTES`, 0 keeps the kernel's default.
   */
  receiveBufferBytes?: number;
  /**
   * Send with libc's `sendto` when FFI allows (direct_send.ts); default
   * true. False keeps every datagram on Deno's asynchronous `send`.
   */
  directSend?: boolean;
  /** When present, every datagram (heartbeats included) is sealed. */
  crypto?: TransportCrypto;
  /** A frame from `from` passed every check. `bytes` is the caller's to keep. */
  onFrame(bytes: Uint8Array, from: number): void;
  /** A link to a peer went up or down. */
  onLinkChange?(change: LinkChange): void;
  /** A datagram was dropped; `source` is "addr:port" as received. */
  onReject?(reason: string, source: string): void;
  /**
   * Test hook: a file polled every `BLOCK_POLL_MS`. A JSON list of link
   * numbers blocks those links: they neither send nor receive, like a dead
   * NIC. An object `{"links": [..], "dropReceived": {"links": [..],
   * "frames": [..], "every": N}}` also drops every Nth (default: every)
   * received data frame of the named kinds (as `testFrameKind` names them)
   * on those links: steady loss of one message type, which a whole-link cut
   * cannot produce on demand. A missing file blocks nothing; unparsable
   * content keeps the last rules.
   */
  testBlockFile?: string;
  /** Names a data frame's kind for `dropReceived` (the daemon: Totem type). */
  testFrameKind?(frame: Uint8Array): string | null;
}

/** What the test block file asks for (see `TransportOptions.testBlockFile`). */
export interface BlockRules {
  /** Links cut both ways. */
  links: ReadonlySet<number>;
  /** Links on which every `every`th received frame of `frames` kinds drops. */
  dropReceived: {
    links: ReadonlySet<number>;
    frames: ReadonlySet<string>;
    every: number;
  };
}

const NO_BLOCK: BlockRules = {
  links: new Set(),
  dropReceived: { links: new Set(), frames: new Set(), every: 1 },
};

/** One (peer, link) as `Transport.linkStatus` reports it. */
export interface LinkStatus extends LinkSnapshot {
  /** False while the test hook blocks the link. */
  enabled: boolean;
  /** Local "addr:port" of the link. */
  src: string;
  /** The peer's "addr:port" on the link. */
  dst: string;
}

/** Counters of one transport. Dropped datagrams are keyed by reason. */
export interface TransportStats {
  /** Datagrams that passed every check, and their bytes on the wire. */
  rxPackets: number;
  rxBytes: number;
  /** Datagrams the kernel accepted, and their bytes. */
  txPackets: number;
  txBytes: number;
  /** Frames the node sent to itself (looped back without the network). */
  loopback: number;
  /** Our own multicast datagrams heard back and ignored. */
  ownEchoes: number;
  /** Pongs matching no recent ping (late, duplicated or forged). */
  stalePongs: number;
  /** Received datagrams dropped by the test hook. */
  rxBlocked: number;
  /**
   * Heartbeat steps that came late enough to mean this process stalled (GC,
   * SIGSTOP, a paused VM); the silence they cover is not held against peers.
   */
  heartbeatStalls: number;
  /**
   * Sends dropped before the socket: `queue_full`, `blocked` (test hook),
   * `closed` (after `close`), `no_route` (unknown node).
   */
  txDropped: Record<string, number>;
  /** Failed `send`/`receive` calls by error name. */
  txErrors: Record<string, number>;
  /** Failed sends since the last successful one (continuous_sendmsg_failures). */
  txErrorsContinuous: number;
  rxErrors: Record<string, number>;
  /**
   * Refused datagrams: `net_<reason>` for transport checks (wire.ts reasons,
   * `unlisted_source`, `sender_mismatch`, `unknown_sender`, `link_mismatch`,
   * `unknown_link`, `wrong_destination`), `crypto_<reason>` for the opener.
   */
  rejected: Record<string, number>;
}

/** The transport cannot start: a bad address, port or bind (operator error). */
export class TransportError extends Error {
  override name = "TransportError";
}

interface Outgoing {
  bytes: Uint8Array;
  addr: Deno.NetAddr;
  /** Peers the datagram is for (tx counters); several for a multicast. */
  peers: number | readonly number[];
  /**
   * A frame to "all": consecutive ones may be in flight together (see
   * `#drain`). Everything else waits for what is before it and is waited for.
   */
  broadcast?: boolean;
}

/** Most broadcast datagrams of one link in flight at once. */
const BROADCAST_IN_FLIGHT_MAX = 64;

interface McastSocket {
  sock: Deno.DatagramConn;
  membership: Deno.MulticastV4Membership | Deno.MulticastV6Membership;
  group: Deno.NetAddr;
}

interface LocalLink {
  readonly link: number;
  readonly addr: Deno.NetAddr;
  readonly sock: Deno.DatagramConn;
  mcast: McastSocket | null;
  /** Source key ("host|port") of each peer on this link (`setPeers` replaces it). */
  sources: ReadonlyMap<string, number>;
  /** Our own source key, to ignore our multicast echoes. */
  readonly selfKey: string;
  readonly control: Fifo<Outgoing>;
  readonly data: Fifo<Outgoing>;
  draining: boolean;
  drained: Promise<void>;
  /** Sends at once while nothing is queued (direct_send.ts), if available. */
  direct: DirectSender | null;
}

/** UDP transport for one node: links, heartbeats, queues and checks. */
export class Transport {
  readonly nodeId: number;
  /** What `open` got when it asked for larger kernel receive buffers. */
  readonly receiveBuffers: {
    link: number;
    socket: string;
    result: ReceiveBufferResult;
  }[] = [];
  /**
   * Per link, null when datagrams go out with libc's `sendto`
   * (direct_send.ts), else why they take Deno's slower `send`.
   */
  readonly directSend: { link: number; reason: string | null }[] = [];
  readonly mode: "udpu" | "udp";
  readonly #table: LinkTable;
  /**
   * Datagrams of this turn waiting for `#flushDeferred`; a flush is
   * scheduled whenever this is not empty.
   */
  #deferred: { ll: LocalLink; lane: "control" | "data"; item: Outgoing }[] = [];
  /** `sendto` addresses of the peers' and groups' NetAddr objects. */
  readonly #sockaddrs = new WeakMap<Deno.NetAddr, Uint8Array | null>();
  readonly #links: ReadonlyMap<number, LocalLink>;
  /** Each peer's address per link (`setPeers` replaces it). */
  #peerAddrs: ReadonlyMap<number, ReadonlyMap<number, Deno.NetAddr>>;
  #peerIds: readonly number[];
  /** What `setPeers` re-plans with: the options without the nodelist. */
  readonly #planOptions: Omit<TransportOptions, "nodes">;
  readonly #crypto: TransportCrypto | undefined;
  readonly #checkSource: boolean;
  readonly #sendQueueMax: number;
  readonly #onFrame: (bytes: Uint8Array, from: number) => void;
  readonly #onLinkChange: ((change: LinkChange) => void) | undefined;
  readonly #onReject: ((reason: string, source: string) => void) | undefined;
  readonly #testBlockFile: string | undefined;
  readonly #testFrameKind: ((frame: Uint8Array) => string | null) | undefined;
  #block: BlockRules = NO_BLOCK;
  /** Frames `dropReceived` matched so far: drops every `every`th. */
  #dropMatched = 0;
  #closed = false;
  /** The receive buffer `#handOver` last gave away with its frame. */
  #handedOver: ArrayBufferLike | null = null;
  #closing: Promise<void> | null = null;
  #heartbeat: ReturnType<typeof setInterval> | undefined;
  #blockPoll: ReturnType<typeof setInterval> | undefined;
  #blockPolling: Promise<void> | null = null;
  readonly #loops: Promise<void>[] = [];
  readonly #stats: TransportStats = {
    rxPackets: 0,
    rxBytes: 0,
    txPackets: 0,
    txBytes: 0,
    loopback: 0,
    ownEchoes: 0,
    stalePongs: 0,
    rxBlocked: 0,
    heartbeatStalls: 0,
    txDropped: {},
    txErrors: {},
    txErrorsContinuous: 0,
    rxErrors: {},
    rejected: {},
  };

  /**
   * Binds every local link, joins multicast groups in udp mode, reads the
   * test block file once, starts receiving and sends the first heartbeats.
   * Throws a `TransportError` (with the OS error as `cause`) when the
   * configuration is unusable or a bind fails; nothing stays open then.
   */
  static async open(options: TransportOptions): Promise<Transport> {
    const plan = planLinks(options);
    // A block file that exists before open() applies from the first datagram.
    const block = options.testBlockFile === undefined
      ? NO_BLOCK
      : await readBlockFile(options.testBlockFile) ?? NO_BLOCK;
    const opened: LocalLink[] = [];
    try {
      for (const p of plan.links) {
        const ll = await bindLink(p);
        opened.push(ll);
      }
    } catch (e) {
      for (const ll of opened) await closeLink(ll);
      throw e;
    }
    const transport = new Transport(options, plan, opened);
    for (const ll of opened) {
      const direct = options.directSend === false
        ? { reason: "turned off (directSend: false)" }
        : openDirectSender(ll.addr.hostname, ll.addr.port);
      if ("reason" in direct) {
        transport.directSend.push({ link: ll.link, reason: direct.reason });
      } else {
        ll.direct = direct;
        transport.directSend.push({ link: ll.link, reason: null });
      }
    }
    const bufferBytes = options.receiveBufferBytes ??
      SOCKET_RECEIVE_BUFFER_BYTES;
    if (bufferBytes > 0) {
      for (const ll of opened) {
        const socks: [string, Deno.NetAddr][] = [["unicast", ll.addr]];
        if (ll.mcast !== null) {
          socks.push(["multicast", {
            transport: "udp",
            hostname: ll.mcast.group.hostname,
            port: ll.mcast.group.port,
          }]);
        }
        for (const [kind, a] of socks) {
          transport.receiveBuffers.push({
            link: ll.link,
            socket: `${kind} ${formatAddr(a)}`,
            result: raiseReceiveBuffer(a.hostname, a.port, bufferBytes),
          });
        }
      }
    }
    transport.#block = block;
    transport.#start();
    return transport;
  }

  private constructor(
    options: TransportOptions,
    plan: LinkPlan,
    links: readonly LocalLink[],
  ) {
    this.nodeId = options.nodeId;
    this.mode = options.mode;
    const pingIntervalMs = options.pingIntervalMs ?? PING_INTERVAL_MS_DEFAULT;
    this.#table = new LinkTable({
      nodeId: options.nodeId,
      peers: plan.peers,
      linkMode: options.linkMode,
      linkPriorities: options.linkPriorities,
      pingIntervalMs,
      pingTimeoutMs: options.pingTimeoutMs ??
        PING_TIMEOUT_INTERVALS_DEFAULT * pingIntervalMs,
      pongCount: options.pongCount,
    });
    this.#links = new Map(links.map((ll) => [ll.link, ll]));
    this.#peerAddrs = plan.peerAddrs;
    this.#peerIds = plan.peers.map((p) => p.nodeId);
    const { nodes: _nodes, ...planOptions } = options;
    this.#planOptions = planOptions;
    this.#crypto = options.crypto;
    this.#checkSource = options.crypto === undefined ||
      (options.blockUnlistedIps ?? true);
    this.#sendQueueMax = options.sendQueueMax ?? SEND_QUEUE_MAX_DEFAULT;
    this.#onFrame = options.onFrame;
    this.#onLinkChange = options.onLinkChange;
    this.#onReject = options.onReject;
    this.#testBlockFile = options.testBlockFile;
    this.#testFrameKind = options.testFrameKind;
  }

  #start(): void {
    if (this.#testBlockFile !== undefined) {
      const path = this.#testBlockFile;
      this.#blockPoll = setInterval(() => {
        if (this.#blockPolling !== null) return;
        this.#blockPolling = this.#pollBlockFile(path).finally(() => {
          this.#blockPolling = null;
        });
      }, BLOCK_POLL_MS);
    }
    for (const ll of this.#links.values()) {
      this.#loops.push(this.#receiveLoop(ll, ll.sock));
      if (ll.mcast !== null) {
        this.#loops.push(this.#receiveLoop(ll, ll.mcast.sock));
      }
    }
    // First heartbeats at once: links come up after one round trip.
    this.#beat();
    this.#heartbeat = setInterval(
      () => this.#beat(),
      this.#table.pingIntervalMs,
    );
  }

  /** Counters, copied. */
  get stats(): TransportStats {
    const s = this.#stats;
    return {
      ...s,
      heartbeatStalls: this.#table.stalls,
      txDropped: { ...s.txDropped },
      txErrors: { ...s.txErrors },
      rxErrors: { ...s.rxErrors },
      rejected: { ...s.rejected },
    };
  }

  /**
   * Zeroes the counters, the per-link ones included (cmap
   * `stats.clear.knet`); link state is kept.
   */
  clearStats(): void {
    const s = this.#stats;
    for (
      const key of [
        "rxPackets",
        "rxBytes",
        "txPackets",
        "txBytes",
        "loopback",
        "ownEchoes",
        "stalePongs",
        "rxBlocked",
        "txErrorsContinuous",
      ] as const
    ) s[key] = 0;
    s.txDropped = {};
    s.txErrors = {};
    s.rxErrors = {};
    s.rejected = {};
    this.#table.clearStats();
  }

  /** Link numbers the test hook currently blocks, ascending. */
  get blockedLinks(): number[] {
    return [...this.#block.links].sort((a, b) => a - b);
  }

  /**
   * Queues `bytes` (one Totem frame) for `to`: a nodeid, or "all" for every
   * other configured node (udpu) or the multicast group of each chosen link
   * (udp). Links are chosen by link mode (links.ts). To our own nodeid the
   * frame is handed back to `onFrame` in a microtask: a single-node ring
   * sends its token to itself. Never blocks and never throws on network
   * trouble; drops are counted in `stats.txDropped`.
   */
  send(to: number | "all", bytes: Uint8Array): void {
    if (this.#closed) return this.#dropTx("closed");
    if (to === this.nodeId) {
      const copy = bytes.slice();
      this.#stats.loopback++;
      queueMicrotask(() => {
        if (!this.#closed) this.#onFrame(copy, this.nodeId);
      });
      return;
    }
    if (to === "all") {
      if (this.mode === "udp") {
        for (const link of this.#table.routeAll()) {
          const ll = this.#links.get(link);
          assert(ll !== undefined && ll.mcast !== null, "mcast link bound");
          this.#enqueue(ll, "data", {
            bytes: this.#datagram("data", link, 0, bytes),
            addr: ll.mcast.group,
            peers: this.#table.peersOn(link),
            broadcast: true,
          });
        }
        return;
      }
      // One datagram per link, shared by every peer sent on that link.
      const perLink = new Map<number, Uint8Array>();
      for (const peer of this.#peerIds) {
        for (const link of this.#table.route(peer)) {
          let datagram = perLink.get(link);
          if (datagram === undefined) {
            datagram = this.#datagram("data", link, 0, bytes);
            perLink.set(link, datagram);
          }
          this.#sendTo(peer, link, "data", datagram, true);
        }
      }
      return;
    }
    if (!this.#table.hasPeer(to)) return this.#dropTx("no_route");
    for (const link of this.#table.route(to)) {
      this.#sendTo(to, link, "data", this.#datagram("data", link, to, bytes));
    }
  }

  /**
   * Replaces the configured nodes at runtime (configuration reload): `nodes`
   * is the whole new nodelist, this node included. Peers that stay keep
   * their link state; new ones start with links down and are pinged from
   * the next heartbeat; removed ones are neither sent to nor accepted from
   * any more (their datagrams count as `net_unlisted_source` or
   * `net_unknown_sender`). A peer whose address on a link changed restarts
   * that link from down. This node's own addresses, ports and multicast
   * groups are bound sockets and cannot change here.
   *
   * Throws `TransportError` (and changes nothing) when the new nodelist is
   * unusable; returns the links that went down because they were removed,
   * after reporting each to `onLinkChange`.
   */
  setPeers(nodes: readonly TransportNode[]): LinkChange[] {
    if (this.#closed) {
      throw new TransportError("the transport is closed");
    }
    const plan = planLinks({ ...this.#planOptions, nodes });
    // Our own sockets stay bound: the new plan must want the same ones.
    const bound = [...this.#links.values()].map((ll) =>
      `${ll.link}=${formatAddr(ll.addr)}`
    ).sort().join(" ");
    const wanted = plan.links.map((p) => `${p.link}=${formatAddr(p.addr)}`)
      .sort().join(" ");
    if (bound !== wanted) {
      throw new TransportError(
        `node ${this.nodeId}: its own link addresses cannot change at runtime (bound ${bound}, new configuration ${wanted}); restart the node`,
      );
    }
    const reset: { nodeId: number; link: number }[] = [];
    for (const [nodeId, addrs] of plan.peerAddrs) {
      const before = this.#peerAddrs.get(nodeId);
      if (before === undefined) continue;
      for (const [link, addr] of addrs) {
        const old = before.get(link);
        if (
          old !== undefined &&
          sourceKey(old.hostname, old.port) !==
            sourceKey(addr.hostname, addr.port)
        ) reset.push({ nodeId, link });
      }
    }
    const changes = this.#table.setPeers(plan.peers, reset);
    for (const p of plan.links) {
      const ll = this.#links.get(p.link);
      assert(ll !== undefined, "planned link is bound");
      ll.sources = p.sources;
    }
    this.#peerAddrs = plan.peerAddrs;
    this.#peerIds = plan.peers.map((p) => p.nodeId);
    for (const change of changes) this.#onLinkChange?.(change);
    return changes;
  }

  /** Configured peers (every node but this one), ascending. */
  get peerIds(): number[] {
    return [...this.#peerIds].sort((a, b) => a - b);
  }

  /** Every (peer, link) with state, counters and addresses. */
  linkStatus(): LinkStatus[] {
    return this.#table.snapshot().map((s) => {
      const ll = this.#links.get(s.link);
      const dst = this.#peerAddrs.get(s.nodeId)?.get(s.link);
      assert(ll !== undefined && dst !== undefined, "status of a bound link");
      return {
        ...s,
        enabled: !this.#block.links.has(s.link),
        src: formatAddr(ll.addr),
        dst: formatAddr(dst),
      };
    });
  }

  /**
   * Stops sending and delivering, lets the queued datagrams go out (a clean
   * leave must reach the peers), then closes every socket and waits for the
   * loops to end. Idempotent.
   */
  close(): Promise<void> {
    if (this.#closing === null) this.#closing = this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    // A clean leave was queued just before: it must still go out.
    this.#flushDeferred();
    this.#closed = true;
    clearInterval(this.#heartbeat);
    clearInterval(this.#blockPoll);
    await this.#blockPolling;
    await Promise.all([...this.#links.values()].map((ll) => ll.drained));
    for (const ll of this.#links.values()) {
      // The descriptor may be reused once closed: never send on it again.
      ll.direct = null;
      await closeLink(ll);
    }
    await Promise.all(this.#loops);
  }

  #beat(): void {
    const { pings, changes } = this.#table.tick(performance.now());
    for (const ping of pings) {
      this.#sendTo(
        ping.nodeId,
        ping.link,
        "control",
        this.#datagram(
          "ping",
          ping.link,
          ping.nodeId,
          encodePingBody(ping.seq),
        ),
      );
    }
    for (const change of changes) this.#onLinkChange?.(change);
  }

  #datagram(
    kind: PacketKind,
    link: number,
    dst: number,
    body: Uint8Array,
  ): Uint8Array {
    const clear = encodePacket({ kind, link, sender: this.nodeId, dst }, body);
    const datagram = this.#crypto === undefined
      ? clear
      : this.#crypto.seal(clear);
    // Frame sizes are the packing layer's job (netmtu): this is our bug.
    assert(
      datagram.length <= DATAGRAM_BYTES_MAX,
      `datagram of ${datagram.length} bytes exceeds ${DATAGRAM_BYTES_MAX}`,
    );
    return datagram;
  }

  #sendTo(
    peer: number,
    link: number,
    lane: "control" | "data",
    bytes: Uint8Array,
    broadcast = false,
  ): void {
    const ll = this.#links.get(link);
    const addr = this.#peerAddrs.get(peer)?.get(link);
    assert(ll !== undefined && addr !== undefined, "route to a bound link");
    this.#enqueue(ll, lane, { bytes, addr, peers: peer, broadcast });
  }

  #enqueue(ll: LocalLink, lane: "control" | "data", item: Outgoing): void {
    if (this.#closed) return this.#dropTx("closed");
    if (this.#block.links.has(ll.link)) return this.#dropTx("blocked");
    if (ll.direct !== null) {
      if (this.#deferred.length === 0) {
        // Two hops: the IPC writes this turn queued (one microtask) go
        // first, so the local client is woken before the next node is.
        queueMicrotask(() => queueMicrotask(() => this.#flushDeferred()));
      }
      this.#deferred.push({ ll, lane, item });
      return;
    }
    this.#queueItem(ll, lane, item);
  }

  /**
   * Sends now what this turn queued for `sendto`, instead of after the
   * turn's microtasks. For a caller that knows it queued no IPC write this
   * turn (a token visit that delivered nothing), so waiting would only hold
   * the next node back (README, Measurements: "Datagrams leave with
   * `sendto`").
   */
  flush(): void {
    this.#flushDeferred();
  }

  /**
   * Sends what this turn queued for `sendto`, in order. With nothing queued
   * or in flight on its link a datagram leaves at once; behind a queue it
   * would overtake, so it waits its turn there. The microtasks scheduled
   * before a `flush` find nothing left and return.
   */
  #flushDeferred(): void {
    const items = this.#deferred;
    this.#deferred = [];
    for (const { ll, lane, item } of items) {
      if (this.#closed) {
        this.#dropTx("closed");
        continue;
      }
      if (
        ll.direct !== null && !ll.draining && ll.control.length === 0 &&
        ll.data.length === 0 && this.#sendDirect(ll, ll.direct, item, lane)
      ) continue;
      this.#queueItem(ll, lane, item);
    }
  }

  #queueItem(ll: LocalLink, lane: "control" | "data", item: Outgoing): void {
    const queue = lane === "control" ? ll.control : ll.data;
    const max = lane === "control" ? CONTROL_QUEUE_MAX : this.#sendQueueMax;
    if (queue.length >= max) return this.#dropTx("queue_full");
    queue.push(item);
    if (!ll.draining) {
      ll.draining = true;
      ll.drained = this.#drain(ll);
    }
  }

  /**
   * Sends the queued datagrams, heartbeats first. A run of broadcast frames
   * leaves together: awaiting each send alone costs an event-loop turn per
   * datagram, and the token queued behind a visit's frames (2 peers x 17
   * frames) then waited about a millisecond on a busy daemon. Frames of one
   * run may reach a peer out of order, which Totem's seq order absorbs as it
   * does any UDP reordering; a unicast (the token, a commit token) still
   * leaves only after every frame queued before it.
   */
  async #drain(ll: LocalLink): Promise<void> {
    const inFlight: Promise<void>[] = [];
    try {
      for (;;) {
        const control = ll.control.shift();
        const item = control ?? ll.data.shift();
        if (item === undefined) {
          if (inFlight.length === 0) return;
          // More may be queued while the run completes.
          await Promise.all(inFlight.splice(0));
          continue;
        }
        // The data lane carries frames; the control lane heartbeats.
        const data = control === undefined;
        if (data && item.broadcast === true) {
          inFlight.push(this.#sendOne(ll, item, data));
          if (inFlight.length >= BROADCAST_IN_FLIGHT_MAX) {
            await Promise.all(inFlight.splice(0));
          }
          continue;
        }
        if (inFlight.length > 0) await Promise.all(inFlight.splice(0));
        await this.#sendOne(ll, item, data);
      }
    } finally {
      ll.draining = false;
    }
  }

  /**
   * True when `sendto` settled `item` (sent, or refused and counted); false
   * when it must take Deno's send (no address for sendto, or no room now).
   * Never throws.
   */
  #sendDirect(
    ll: LocalLink,
    direct: DirectSender,
    item: Outgoing,
    lane: "control" | "data",
  ): boolean {
    let to = this.#sockaddrs.get(item.addr);
    if (to === undefined) {
      to = sockaddrFor(item.addr.hostname, item.addr.port);
      this.#sockaddrs.set(item.addr, to);
    }
    if (to === null) return false;
    const result = direct.send(item.bytes, to);
    if (result === "busy") return false;
    if (result === "sent") {
      this.#sent(ll, item, lane === "data");
    } else {
      // Lost, as on Deno's path (#sendOne): counted, never retried.
      this.#sendFailed(result.error);
    }
    return true;
  }

  /** One datagram, counted; never rejects. */
  async #sendOne(ll: LocalLink, item: Outgoing, data: boolean): Promise<void> {
    try {
      await ll.sock.send(item.bytes, item.addr);
    } catch (e) {
      this.#sendFailed(errorName(e));
      return;
    }
    this.#sent(ll, item, data);
  }

  /** A datagram the kernel refused: lost, counted by error name. */
  #sendFailed(error: string): void {
    count(this.#stats.txErrors, error);
    this.#stats.txErrorsContinuous++;
  }

  #sent(ll: LocalLink, item: Outgoing, data: boolean): void {
    this.#stats.txErrorsContinuous = 0;
    this.#stats.txPackets++;
    this.#stats.txBytes += item.bytes.length;
    if (typeof item.peers === "number") {
      this.#table.sent(item.peers, ll.link, item.bytes.length, data);
    } else {
      for (const p of item.peers) {
        this.#table.sent(p, ll.link, item.bytes.length, data);
      }
    }
  }

  async #receiveLoop(ll: LocalLink, sock: Deno.DatagramConn): Promise<void> {
    // One buffer per socket, reused while the frames it brings are small
    // (they are copied on); a large frame keeps the buffer and the next
    // receive gets a new one (#handOver), which saves copying it.
    let buf = new Uint8Array(RECEIVE_BUFFER_BYTES);
    for (;;) {
      let datagram: Uint8Array;
      let source: Deno.Addr;
      try {
        [datagram, source] = await sock.receive(buf);
      } catch (e) {
        // close() ends a pending receive with Interrupted or BadResource.
        if (this.#closed) return;
        count(this.#stats.rxErrors, errorName(e));
        await new Promise((resolve) =>
          setTimeout(resolve, RECEIVE_ERROR_PAUSE_MS)
        );
        continue;
      }
      this.#accept(ll, datagram, source);
      if (this.#handedOver === buf.buffer) {
        buf = new Uint8Array(RECEIVE_BUFFER_BYTES);
      }
    }
  }

  /**
   * The frame to hand on, which the core may keep: a copy of a small one;
   * a large one as it lies in the receive buffer, which then goes with it.
   * Decrypted frames too: the opener decrypts in the receive buffer.
   */
  #handOver(body: Uint8Array): Uint8Array {
    // A token, or frames of a lightly loaded ring: a view of a shared chunk
    // costs 30 ns, a buffer of its own 1.1 us (small_bytes.ts).
    if (body.length < HAND_OVER_BYTES_MIN) return smallCopy(body);
    this.#handedOver = body.buffer;
    return body;
  }

  /** Checks one datagram and dispatches it; every refusal is counted. */
  #accept(ll: LocalLink, datagram: Uint8Array, source: Deno.Addr): void {
    if (this.#closed) return;
    if (this.#block.links.has(ll.link)) {
      this.#stats.rxBlocked++;
      return;
    }
    if (source.transport !== "udp") return;
    const key = sourceKey(source.hostname, source.port);
    if (key === ll.selfKey) {
      this.#stats.ownEchoes++;
      return;
    }
    const sourceNode = ll.sources.get(key);
    if (this.#checkSource && sourceNode === undefined) {
      return this.#reject("net_unlisted_source", source);
    }

    let plaintext = datagram;
    let authenticated: number | undefined;
    if (this.#crypto !== undefined) {
      const opened = this.#crypto.open(datagram);
      if (!opened.ok) return this.#reject(`crypto_${opened.reason}`, source);
      plaintext = opened.plaintext;
      authenticated = opened.sender;
    }

    const decoded = decodePacket(plaintext);
    if (!decoded.ok) return this.#reject(`net_${decoded.reason}`, source);
    const { header, body } = decoded.value;
    if (header.link !== ll.link) {
      return this.#reject("net_link_mismatch", source);
    }
    if (header.sender === this.nodeId || !this.#table.hasPeer(header.sender)) {
      return this.#reject("net_unknown_sender", source);
    }
    if (authenticated !== undefined && authenticated !== header.sender) {
      return this.#reject("net_sender_mismatch", source);
    }
    if (this.#checkSource && sourceNode !== header.sender) {
      return this.#reject("net_sender_mismatch", source);
    }
    if (header.dst !== 0 && header.dst !== this.nodeId) {
      return this.#reject("net_wrong_destination", source);
    }
    const nowMs = performance.now();
    if (
      !this.#table.received(
        header.sender,
        ll.link,
        datagram.length,
        nowMs,
        header.kind === "data",
      )
    ) {
      return this.#reject("net_unknown_link", source);
    }
    this.#stats.rxPackets++;
    this.#stats.rxBytes += datagram.length;

    switch (header.kind) {
      case "data":
        if (this.#dropsReceived(ll.link, body)) {
          this.#stats.rxBlocked++;
          return;
        }
        this.#onFrame(this.#handOver(body), header.sender);
        return;
      case "ping":
        this.#sendTo(
          header.sender,
          ll.link,
          "control",
          this.#datagram("pong", ll.link, header.sender, body),
        );
        return;
      case "pong": {
        const result = this.#table.pong(
          header.sender,
          ll.link,
          decodePingBody(body),
          nowMs,
        );
        if (!result.accepted) this.#stats.stalePongs++;
        if (result.change !== null) this.#onLinkChange?.(result.change);
        return;
      }
      default:
        unreachable(header.kind);
    }
  }

  #reject(reason: string, source: Deno.NetAddr): void {
    count(this.#stats.rejected, reason);
    this.#onReject?.(reason, formatAddr(source));
  }

  #dropTx(reason: string): void {
    count(this.#stats.txDropped, reason);
  }

  #dropsReceived(link: number, frame: Uint8Array): boolean {
    const drop = this.#block.dropReceived;
    if (!drop.links.has(link) || this.#testFrameKind === undefined) {
      return false;
    }
    const kind = this.#testFrameKind(frame);
    if (kind === null || !drop.frames.has(kind)) return false;
    return ++this.#dropMatched % drop.every === 0;
  }

  async #pollBlockFile(path: string): Promise<void> {
    const block = await readBlockFile(path);
    if (block !== null) this.#block = block;
  }
}

/**
 * Reads the test hook's rules: none when the file is missing, null (keep the
 * last rules) when it cannot be read or parsed.
 */
async function readBlockFile(path: string): Promise<BlockRules | null> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    return e instanceof Deno.errors.NotFound ? NO_BLOCK : null;
  }
  try {
    return parseBlockRules(JSON.parse(text));
  } catch {
    // A writer may be half-way through: keep the last rules.
    return null;
  }
}

/** Validates the block file's JSON; null when it is not a known shape. */
export function parseBlockRules(value: unknown): BlockRules | null {
  const linkSet = (v: unknown): Set<number> | null =>
    Array.isArray(v) &&
      v.every((n) => Number.isInteger(n) && n >= 0 && n < WIRE_LINKS_MAX)
      ? new Set(v as number[])
      : null;
  if (Array.isArray(value)) {
    const links = linkSet(value);
    return links === null ? null : { ...NO_BLOCK, links };
  }
  if (typeof value !== "object" || value === null) return null;
  const o = value as Record<string, unknown>;
  const links = o.links === undefined ? new Set<number>() : linkSet(o.links);
  if (links === null) return null;
  if (o.dropReceived === undefined) return { ...NO_BLOCK, links };
  const d = o.dropReceived as Record<string, unknown>;
  if (typeof d !== "object" || d === null) return null;
  const dropLinks = linkSet(d.links);
  const frames = d.frames;
  const every = d.every ?? 1;
  if (
    dropLinks === null || !Array.isArray(frames) ||
    !frames.every((f) => typeof f === "string") ||
    !Number.isInteger(every) || (every as number) < 1
  ) {
    return null;
  }
  return {
    links,
    dropReceived: {
      links: dropLinks,
      frames: new Set(frames as string[]),
      every: every as number,
    },
  };
}

// ---------------------------------------------------------------------------
// Planning and binding

interface LinkPlanEntry {
  link: number;
  addr: Deno.NetAddr;
  group: Deno.NetAddr | null;
  /** Source key → nodeid of each peer on this link. */
  sources: Map<string, number>;
}

interface LinkPlan {
  links: LinkPlanEntry[];
  peers: { nodeId: number; links: number[] }[];
  peerAddrs: Map<number, Map<number, Deno.NetAddr>>;
}

/** Validates the options and works out addresses; throws TransportError. */
function planLinks(options: TransportOptions): LinkPlan {
  const intervalMs = options.pingIntervalMs ?? PING_INTERVAL_MS_DEFAULT;
  const timeoutMs = options.pingTimeoutMs ??
    PING_TIMEOUT_INTERVALS_DEFAULT * intervalMs;
  if (!(intervalMs > 0) || !(timeoutMs > intervalMs)) {
    throw new TransportError(
      `knet_ping_timeout (${timeoutMs} ms) must exceed knet_ping_interval (${intervalMs} ms), which must be positive`,
    );
  }
  const queueMax = options.sendQueueMax ?? SEND_QUEUE_MAX_DEFAULT;
  if (!Number.isInteger(queueMax) || queueMax < 1) {
    throw new TransportError(
      `sendQueueMax must be a positive integer, got ${queueMax}`,
    );
  }
  const pongCount = options.pongCount ?? 1;
  if (!Number.isInteger(pongCount) || pongCount < 1) {
    throw new TransportError(
      `knet_pong_count must be a positive integer, got ${pongCount}`,
    );
  }
  const ids = new Set<number>();
  for (const node of options.nodes) {
    if (ids.has(node.nodeId)) {
      throw new TransportError(`nodelist: nodeid ${node.nodeId} appears twice`);
    }
    ids.add(node.nodeId);
    if (node.addrs.length > WIRE_LINKS_MAX) {
      throw new TransportError(
        `node ${node.nodeId}: at most ${WIRE_LINKS_MAX} links, got ${node.addrs.length}`,
      );
    }
  }
  const me = options.nodes.find((n) => n.nodeId === options.nodeId);
  if (me === undefined) {
    throw new TransportError(
      `nodelist: this node (nodeid ${options.nodeId}) is not in it`,
    );
  }
  if (me.addrs.every((a) => a === undefined)) {
    throw new TransportError(
      `node ${options.nodeId}: no address on any link`,
    );
  }
  const links: LinkPlanEntry[] = [];
  const peers = new Map<number, number[]>();
  const peerAddrs = new Map<number, Map<number, Deno.NetAddr>>();
  me.addrs.forEach((host, link) => {
    if (host === undefined) return;
    const addr = udpAddr(host, portOf(options, me, link));
    let group: Deno.NetAddr | null = null;
    if (options.mode === "udp") {
      const g = typeof options.mcastAddr === "string"
        ? options.mcastAddr
        : options.mcastAddr?.[link];
      if (g === undefined) {
        throw new TransportError(
          `link ${link}: transport udp needs a multicast address`,
        );
      }
      if (isIpv6(g) !== isIpv6(host)) {
        throw new TransportError(
          `link ${link}: multicast address ${g} and local address ${host} are of different IP families`,
        );
      }
      group = udpAddr(g, addr.port);
    }
    const sources = new Map<string, number>();
    for (const node of options.nodes) {
      const peerHost = node.addrs[link];
      if (node.nodeId === options.nodeId || peerHost === undefined) continue;
      const peerAddr = udpAddr(peerHost, portOf(options, node, link));
      const key = sourceKey(peerAddr.hostname, peerAddr.port);
      if (sources.has(key) || key === sourceKey(host, addr.port)) {
        throw new TransportError(
          `link ${link}: node ${node.nodeId} shares address ${
            formatAddr(peerAddr)
          } with another node`,
        );
      }
      sources.set(key, node.nodeId);
      let ls = peers.get(node.nodeId);
      if (ls === undefined) peers.set(node.nodeId, ls = []);
      ls.push(link);
      let pa = peerAddrs.get(node.nodeId);
      if (pa === undefined) peerAddrs.set(node.nodeId, pa = new Map());
      pa.set(link, peerAddr);
    }
    links.push({ link, addr, group, sources });
  });
  return {
    links,
    peers: [...peers].map(([nodeId, ls]) => ({ nodeId, links: ls })),
    peerAddrs,
  };
}

function portOf(
  options: TransportOptions,
  node: TransportNode,
  link: number,
): number {
  const port = node.ports?.[link] ??
    (typeof options.port === "number" ? options.port : options.port[link]);
  if (
    port === undefined || !Number.isInteger(port) || port < 1 ||
    port > 65_535
  ) {
    throw new TransportError(
      `link ${link}: node ${node.nodeId} needs a UDP port 1..65535, got ${port}`,
    );
  }
  return port;
}

async function bindLink(plan: LinkPlanEntry): Promise<LocalLink> {
  const where = `link ${plan.link} (${formatAddr(plan.addr)})`;
  let sock: Deno.DatagramConn;
  try {
    sock = Deno.listenDatagram({
      transport: "udp",
      hostname: plan.addr.hostname,
      port: plan.addr.port,
      // Our multicast must reach nodes on this host too; echoes are ignored.
      loopback: plan.group !== null,
    });
  } catch (e) {
    throw new TransportError(`${where}: cannot bind: ${errorText(e)}`, {
      cause: e,
    });
  }
  let mcast: McastSocket | null = null;
  if (plan.group !== null) {
    const group = plan.group;
    let msock: Deno.DatagramConn | undefined;
    try {
      // Several nodes on one host share the group port.
      msock = Deno.listenDatagram({
        transport: "udp",
        hostname: group.hostname,
        port: group.port,
        reuseAddress: true,
      });
      const membership = isIpv6(group.hostname)
        ? await msock.joinMulticastV6(group.hostname, 0)
        : await msock.joinMulticastV4(group.hostname, plan.addr.hostname);
      mcast = { sock: msock, membership, group };
    } catch (e) {
      msock?.close();
      sock.close();
      throw new TransportError(
        `${where}: cannot join multicast group ${group.hostname}: ${
          errorText(e)
        }`,
        { cause: e },
      );
    }
  }
  return {
    link: plan.link,
    addr: plan.addr,
    sock,
    mcast,
    sources: plan.sources,
    selfKey: sourceKey(plan.addr.hostname, plan.addr.port),
    control: new Fifo(),
    data: new Fifo(),
    draining: false,
    direct: null,
    drained: Promise.resolve(),
  };
}

async function closeLink(ll: LocalLink): Promise<void> {
  if (ll.mcast !== null) {
    try {
      await ll.mcast.membership.leave();
    } catch {
      // Closing the socket leaves the group anyway.
    }
    ll.mcast.sock.close();
  }
  ll.sock.close();
}

// ---------------------------------------------------------------------------
// Addresses

function udpAddr(hostname: string, port: number): Deno.NetAddr {
  return { transport: "udp", hostname, port };
}

function isIpv6(host: string): boolean {
  return host.includes(":");
}

/** "1.2.3.4:5405" or "[::1]:5405". */
function formatAddr(addr: Deno.NetAddr): string {
  return isIpv6(addr.hostname)
    ? `[${addr.hostname}]:${addr.port}`
    : `${addr.hostname}:${addr.port}`;
}

/** Compares addresses as the kernel does, whatever their spelling. */
function sourceKey(host: string, port: number): string {
  return `${canonicalHost(host)}|${port}`;
}

/**
 * One spelling per IP address: IPv4 as is, IPv6 as eight lowercase hex
 * groups without leading zeros and without "::" (zone kept). Anything that
 * does not parse is returned lowercased: it then matches no configured node.
 */
export function canonicalHost(host: string): string {
  let h = host.toLowerCase();
  if (!h.includes(":")) return h;
  if (h.startsWith("[") && h.endsWith("]")) h = h.slice(1, -1);
  let zone = "";
  const pct = h.indexOf("%");
  if (pct >= 0) {
    zone = h.slice(pct);
    h = h.slice(0, pct);
  }
  const lastColon = h.lastIndexOf(":");
  const last = h.slice(lastColon + 1);
  if (last.includes(".")) {
    const octets = last.split(".");
    if (octets.length !== 4 || octets.some((o) => !/^[0-9]{1,3}$/.test(o))) {
      return h + zone;
    }
    const n = octets.map(Number);
    if (n.some((o) => o > 255)) return h + zone;
    h = `${h.slice(0, lastColon + 1)}${((n[0] << 8) | n[1]).toString(16)}:${
      ((n[2] << 8) | n[3]).toString(16)
    }`;
  }
  const halves = h.split("::");
  if (halves.length > 2) return h + zone;
  const head = halves[0] === "" ? [] : halves[0].split(":");
  const tail = halves.length === 2 && halves[1] !== ""
    ? halves[1].split(":")
    : [];
  const fill = 8 - head.length - tail.length;
  if (halves.length === 1 ? fill !== 0 : fill < 1) return h + zone;
  const groups = [...head, ...Array<string>(fill).fill("0"), ...tail];
  if (groups.some((g) => !/^[0-9a-f]{1,4}$/.test(g))) return h + zone;
  return groups.map((g) => parseInt(g, 16).toString(16)).join(":") + zone;
}

// ---------------------------------------------------------------------------
// Small helpers

/** FIFO with O(1) amortised shift. */
class Fifo<T> {
  #items: (T | undefined)[] = [];
  #head = 0;

  get length(): number {
    return this.#items.length - this.#head;
  }

  push(item: T): void {
    this.#items.push(item);
  }

  shift(): T | undefined {
    if (this.#head >= this.#items.length) return undefined;
    const item = this.#items[this.#head];
    this.#items[this.#head] = undefined;
    this.#head++;
    if (this.#head === this.#items.length) {
      this.#items = [];
      this.#head = 0;
    } else if (this.#head >= 1024 && this.#head * 2 >= this.#items.length) {
      this.#items = this.#items.slice(this.#head);
      this.#head = 0;
    }
    return item;
  }
}

function count(counters: Record<string, number>, key: string): void {
  counters[key] = (counters[key] ?? 0) + 1;
}

function errorName(e: unknown): string {
  return e instanceof Error ? e.name : "unknown";
}

function errorText(e: unknown): string {
  return e instanceof Error ? `${e.name}: ${e.message}` : String(e);
}
