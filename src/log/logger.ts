/**
 * Daemon logging (an edge): one line per event to stderr, a log file and/or
 * syslog as `logging {}` configures, with timestamps and per-subsystem debug
 * switches (`logging.logger_subsys.<NAME>.debug`).
 */

/** Severity, most to least important. */
export type LogLevel = "error" | "warn" | "notice" | "info" | "debug" | "trace";

const LEVEL_RANK: Record<LogLevel, number> = {
  error: 0,
  warn: 1,
  notice: 2,
  info: 3,
  debug: 4,
  trace: 5,
};

const SYSLOG_SEVERITY: Record<LogLevel, number> = {
  error: 3,
  warn: 4,
  notice: 5,
  info: 6,
  debug: 7,
  trace: 7,
};

const SYSLOG_FACILITY: Record<string, number> = {
  daemon: 3,
  local0: 16,
  local1: 17,
  local2: 18,
  local3: 19,
  local4: 20,
  local5: 21,
  local6: 22,
  local7: 23,
};

/** Where and how much to log. */
export interface LoggerOptions {
  toStderr: boolean;
  logfile?: string;
  toSyslog?: boolean;
  syslogFacility?: string;
  /** "off" logs info and above; "on" adds debug; "trace" everything. */
  debug: "off" | "on" | "trace";
  timestamp: boolean;
  /** Per-subsystem override of `debug`, keyed by upper-case name. */
  subsys?: Record<string, "off" | "on" | "trace">;
  /** Directory for the syslog client socket (the daemon's run dir). */
  runDir?: string;
  /** Prefix of every line (node id), so logs of co-located nodes differ. */
  ident?: string;
}

/** A sink-independent logger. Writes are synchronous so lines never interleave. */
export class Logger {
  #options: LoggerOptions;
  #file: Deno.FsFile | null = null;
  #encoder = new TextEncoder();
  #syslog: Deno.DatagramConn | null = null;
  #syslogPath = "";

  constructor(options: LoggerOptions) {
    this.#options = { ...options };
  }

  /** Opens the log file (append) and the syslog socket when configured. */
  async open(): Promise<void> {
    if (this.#options.logfile) {
      this.#file = await Deno.open(this.#options.logfile, {
        append: true,
        create: true,
        write: true,
        mode: 0o640,
      });
    }
    if (this.#options.toSyslog) {
      try {
        // Our end of the datagram conversation with /dev/log: a socket file
        // in the daemon's own run directory, which it may write.
        const path = `${
          this.#options.runDir ?? "/tmp"
        }/syslog-${Deno.pid}.sock`;
        this.#syslog = Deno.listenDatagram({ transport: "unixpacket", path });
        this.#syslogPath = path;
      } catch (e) {
        this.#write(
          "warn",
          "LOG",
          `syslog unavailable, logging continues elsewhere: ${e}`,
        );
      }
    }
  }

  /** Re-opens the log file (after rotation: `cfgtool -r`). */
  async reopen(): Promise<void> {
    this.#file?.close();
    this.#file = null;
    if (this.#options.logfile) {
      this.#file = await Deno.open(this.#options.logfile, {
        append: true,
        create: true,
        write: true,
        mode: 0o640,
      });
    }
  }

  /**
   * Changes debug settings at runtime: the default (cmap `logging.debug`)
   * or one subsystem's (`logging.logger_subsys.<SUBSYS>.debug`).
   */
  setDebug(level: "off" | "on" | "trace", subsys?: string): void {
    if (subsys === undefined) this.#options.debug = level;
    else {
      this.#options.subsys = {
        ...this.#options.subsys,
        [subsys.toUpperCase()]: level,
      };
    }
  }

  /** Drops a subsystem's debug override: it follows `logging.debug` again. */
  clearSubsysDebug(subsys: string): void {
    const rest = { ...this.#options.subsys };
    delete rest[subsys.toUpperCase()];
    this.#options.subsys = rest;
  }

  /** The debug setting in force for `subsys`, or the default without one. */
  debugLevel(subsys?: string): "off" | "on" | "trace" {
    return (subsys === undefined
      ? undefined
      : this.#options.subsys?.[subsys.toUpperCase()]) ?? this.#options.debug;
  }

  /** Turns the stderr sink on or off at runtime (cmap `logging.to_stderr`). */
  setToStderr(on: boolean): void {
    this.#options.toStderr = on;
  }

  /** True when a message of `level` from `subsys` would be written. */
  enabled(level: LogLevel, subsys: string): boolean {
    const debug = this.#options.subsys?.[subsys.toUpperCase()] ??
      this.#options.debug;
    const max = debug === "trace" ? 5 : debug === "on" ? 4 : 3;
    return LEVEL_RANK[level] <= max;
  }

  /** Writes one line if enabled. */
  log(level: LogLevel, subsys: string, message: string): void {
    if (!this.enabled(level, subsys)) return;
    this.#write(level, subsys, message);
  }

  #write(level: LogLevel, subsys: string, message: string): void {
    const ident = this.#options.ident ? ` [${this.#options.ident}]` : "";
    const stamp = this.#options.timestamp ? `${new Date().toISOString()} ` : "";
    const line = `${stamp}${level.padEnd(6)}${ident} [${
      subsys.toUpperCase().padEnd(5)
    }] ${message}\n`;
    const bytes = this.#encoder.encode(line);
    if (this.#options.toStderr) Deno.stderr.writeSync(bytes);
    if (this.#file !== null) this.#file.writeSync(bytes);
    if (this.#syslog !== null) {
      const facility =
        SYSLOG_FACILITY[this.#options.syslogFacility ?? "daemon"] ?? 3;
      const pri = facility * 8 + SYSLOG_SEVERITY[level];
      const msg = this.#encoder.encode(
        `<${pri}>denosync[${Deno.pid}]: [${subsys}] ${message}`,
      );
      this.#syslog.send(msg, { transport: "unixpacket", path: "/dev/log" })
        .catch(() => {});
    }
  }

  /** Closes files and sockets. */
  close(): void {
    this.#file?.close();
    this.#file = null;
    if (this.#syslog !== null) {
      this.#syslog.close();
      this.#syslog = null;
      try {
        Deno.removeSync(this.#syslogPath);
      } catch {
        // Already gone: nothing to clean up.
      }
    }
  }
}
