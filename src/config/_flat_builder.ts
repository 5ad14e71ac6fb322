/**
 * Turns a stream of section/item events into cmap keys, with the same
 * re-keying rules as Corosync's `main_config_parser_cb` (exec/coroparse.c):
 *
 * - `nodelist { node { … } }` → `nodelist.node.<n>.<key>`, n counting nodes
 *   in file order (across all nodelist sections: same-name sections merge);
 * - `totem { interface { linknumber: 1 … } }` → `totem.interface.1.<key>`
 *   (`ringnumber` is the Corosync 2 spelling; no number means link 0),
 *   `member { memberaddr: … }` → `totem.interface.<l>.member.<m>`;
 * - `logging { logger_subsys { subsys: QUORUM … } }` →
 *   `logging.logger_subsys.QUORUM.<key>` plus `….QUORUM.subsys`;
 * - `logging { logging_daemon { name: corosync … } }` as Corosync maps it;
 * - `uidgid { uid: x  gid: y }` → `uidgid.uid.x` and `uidgid.gid.y` (value "1").
 *
 * Both the corosync.conf parser and the YAML walker drive it, which is what
 * makes the two syntaxes give identical flat maps.
 *
 * @module
 */
import { ConfigError, type ConfigWarning } from "./config_error.ts";
import {
  CMAP_KEY_CHARS_MAX,
  type FlatEntry,
  type ParsedConfig,
} from "./flat.ts";

type SectionState =
  | "normal"
  | "interface"
  | "member"
  | "logger_subsys"
  | "logging_daemon"
  | "uidgid"
  | "nodelist"
  | "node";

interface PendingItem {
  readonly key: string;
  readonly value: string;
  readonly line: number;
}

interface Frame {
  /** cmap path of the section as written (`nodelist.node`, not re-keyed). */
  readonly path: string;
  readonly line: number;
  readonly state: SectionState;
  /** Node number, for `node` frames and sections nested in one. */
  readonly nodeIndex: number;
  /** Items held until the section closes and its real key is known. */
  readonly items: PendingItem[];
  readonly members: PendingItem[];
  linknumber: number;
  linknumberLine: number;
  subsys?: PendingItem;
  daemonName?: PendingItem;
}

// icmap_is_valid_name_char(): the characters a cmap key may use.
const KEY_NAME_RE = /^[A-Za-z0-9_\-\/:.]+$/;
/** Links are numbered 0..7 (Corosync `INTERFACE_MAX` is 8). */
export const LINKS_MAX = 8;

/** Accumulates one file's keys; see the module comment for the rules. */
export class FlatBuilder {
  readonly #file: string;
  readonly #entries = new Map<string, FlatEntry>();
  readonly #sections = new Map<string, number>();
  readonly #warnings: ConfigWarning[] = [];
  readonly #stack: Frame[] = [];
  #nodeCount = 0;

  constructor(file: string) {
    this.#file = file;
  }

  /** How many sections are open. */
  get depth(): number {
    return this.#stack.length;
  }

  /** Line of the innermost open section (for "missing closing brace"). */
  get openLine(): number {
    return this.#stack.at(-1)?.line ?? 0;
  }

  /** Path of the innermost open section. */
  get openPath(): string {
    return this.#stack.at(-1)?.path ?? "";
  }

  /** Throws a ConfigError at `line` of this file. */
  fail(line: number, reason: string): never {
    throw new ConfigError({ file: this.#file, line }, reason);
  }

  /** Records a warning at `line` of this file. */
  warn(line: number, message: string): void {
    this.#warnings.push({ file: this.#file, line, message });
  }

  /** `name {` */
  openSection(name: string, line: number): void {
    this.#checkName(name, line, "section name");
    const parent = this.#stack.at(-1);
    const path = parent ? `${parent.path}.${name}` : name;
    let state: SectionState = "normal";
    let nodeIndex = parent?.nodeIndex ?? -1;
    switch (parent?.state) {
      case "uidgid":
        this.fail(
          line,
          `subsections are not allowed in uidgid, found "${name} {"`,
        );
        break;
      case "member":
        this.fail(
          line,
          `subsections are not allowed in totem.interface.member, found "${name} {"`,
        );
        break;
      case "logger_subsys":
      case "logging_daemon":
        this.fail(
          line,
          `subsections are not allowed in ${parent.path}, found "${name} {"`,
        );
        break;
      case "interface":
        if (name !== "member") {
          this.fail(
            line,
            `only "member {" subsections are allowed in totem.interface, found "${name} {"`,
          );
        }
        state = "member";
        break;
      case "node":
        state = "node";
        break;
      default:
        if (path === "totem.interface") state = "interface";
        else if (path === "logging.logger_subsys") state = "logger_subsys";
        else if (path === "logging.logging_daemon") state = "logging_daemon";
        else if (path === "uidgid") state = "uidgid";
        else if (path === "nodelist") state = "nodelist";
        else if (path === "nodelist.node") {
          state = "node";
          nodeIndex = this.#nodeCount;
          this.#markSection(`nodelist.node.${nodeIndex}`, line);
        }
    }
    if (state === "normal" || state === "nodelist" || state === "uidgid") {
      this.#markSection(path, line);
    }
    this.#stack.push({
      path,
      line,
      state,
      nodeIndex,
      items: [],
      members: [],
      linknumber: 0,
      linknumberLine: 0,
    });
  }

  /** `key: value` */
  item(key: string, value: string, line: number): void {
    const frame = this.#stack.at(-1);
    if (frame === undefined) {
      this.fail(
        line,
        `key "${key}" is outside any section; put it inside a section such as "totem {"`,
      );
    }
    this.#checkName(key, line, "key name");
    switch (frame.state) {
      case "normal":
      case "nodelist":
        this.#set(`${frame.path}.${key}`, value, line);
        return;
      case "node": {
        const rest = frame.path.slice("nodelist.node".length);
        this.#set(
          `nodelist.node.${frame.nodeIndex}${rest}.${key}`,
          value,
          line,
        );
        return;
      }
      case "interface":
        if (key === "linknumber" || key === "ringnumber") {
          this.#setLinknumber(frame, key, value, line);
        } else {
          this.#hold(frame, key, value, line);
        }
        return;
      case "member": {
        if (key !== "memberaddr") {
          this.fail(
            line,
            `only memberaddr is allowed in totem.interface.member, found "${key}"`,
          );
        }
        const parent = this.#stack.at(-2)!;
        parent.members.push({ key, value, line });
        return;
      }
      case "logger_subsys":
      case "logging_daemon":
        if (key === "subsys") {
          this.#warnIfHeld(frame.subsys, frame.path, key, line);
          frame.subsys = { key, value, line };
        } else if (key === "name" && frame.state === "logging_daemon") {
          this.#warnIfHeld(frame.daemonName, frame.path, key, line);
          frame.daemonName = { key, value, line };
        } else {
          this.#hold(frame, key, value, line);
        }
        return;
      case "uidgid":
        if (key !== "uid" && key !== "gid") {
          this.fail(
            line,
            `only uid and gid are allowed in uidgid, found "${key}"`,
          );
        }
        if (value === "") this.fail(line, `uidgid.${key} needs a name`);
        this.#set(`uidgid.${key}.${value}`, "1", line);
        return;
    }
  }

  /** `}` */
  closeSection(line: number): void {
    const frame = this.#stack.pop();
    if (frame === undefined) {
      this.fail(line, `unexpected closing brace "}": no section is open`);
    }
    switch (frame.state) {
      case "interface":
        this.#closeInterface(frame);
        return;
      case "logger_subsys":
        this.#closeLoggerSubsys(frame);
        return;
      case "logging_daemon":
        this.#closeLoggingDaemon(frame);
        return;
      case "node":
        if (frame.path === "nodelist.node") this.#nodeCount++;
        return;
      case "normal":
      case "member":
      case "uidgid":
      case "nodelist":
        return;
    }
  }

  /** The result; every section must be closed. */
  finish(): ParsedConfig {
    if (this.#stack.length > 0) {
      this.fail(
        this.openLine,
        `section "${this.openPath}" is missing its closing brace "}"`,
      );
    }
    return {
      file: this.#file,
      entries: this.#entries,
      sections: this.#sections,
      warnings: this.#warnings,
    };
  }

  #checkName(name: string, line: number, what: string): void {
    if (!KEY_NAME_RE.test(name)) {
      this.fail(
        line,
        `invalid ${what} "${name}": cmap names use only letters, digits and _ - / : .`,
      );
    }
  }

  #set(key: string, value: string, line: number): void {
    if (key.length > CMAP_KEY_CHARS_MAX) {
      this.fail(
        line,
        `key "${key}" is longer than ${CMAP_KEY_CHARS_MAX} characters, the cmap limit`,
      );
    }
    if (!KEY_NAME_RE.test(key) || key.split(".").includes("")) {
      this.fail(line, `invalid key "${key}"`);
    }
    const previous = this.#entries.get(key);
    if (previous !== undefined) {
      this.warn(
        line,
        `duplicate key ${key} (first set at line ${previous.line}); the later value "${value}" wins, as in corosync`,
      );
      // Re-insert so the map stays in "last written" file order.
      this.#entries.delete(key);
    }
    this.#entries.set(key, { value, file: this.#file, line });
  }

  #markSection(path: string, line: number): void {
    if (!this.#sections.has(path)) this.#sections.set(path, line);
  }

  #hold(frame: Frame, key: string, value: string, line: number): void {
    const earlier = frame.items.find((item) => item.key === key);
    this.#warnIfHeld(earlier, frame.path, key, line);
    frame.items.push({ key, value, line });
  }

  #warnIfHeld(
    earlier: PendingItem | undefined,
    path: string,
    key: string,
    line: number,
  ): void {
    if (earlier === undefined) return;
    this.warn(
      line,
      `duplicate key ${path}.${key} (first set at line ${earlier.line}); the later value wins, as in corosync`,
    );
  }

  #setLinknumber(frame: Frame, key: string, value: string, line: number): void {
    if (!/^[0-9]+$/.test(value)) {
      this.fail(
        line,
        `totem.interface.${key} must be a link number 0..${
          LINKS_MAX - 1
        }, got "${value}"`,
      );
    }
    const link = Number(value);
    if (link >= LINKS_MAX) {
      this.fail(
        line,
        `totem.interface.${key} ${link} is too large: links are numbered 0..${
          LINKS_MAX - 1
        }`,
      );
    }
    if (frame.linknumberLine !== 0) {
      this.warn(
        line,
        `duplicate link number in totem.interface (first set at line ${frame.linknumberLine}); the later value wins, as in corosync`,
      );
    }
    frame.linknumber = link;
    frame.linknumberLine = line;
  }

  #closeInterface(frame: Frame): void {
    const prefix = `totem.interface.${frame.linknumber}`;
    this.#markSection(prefix, frame.line);
    for (const item of frame.items) {
      this.#set(`${prefix}.${item.key}`, item.value, item.line);
    }
    frame.members.forEach((member, i) => {
      this.#set(`${prefix}.member.${i}`, member.value, member.line);
    });
  }

  #closeLoggerSubsys(frame: Frame): void {
    const subsys = frame.subsys;
    if (subsys === undefined || subsys.value === "") {
      this.fail(
        frame.line,
        `logger_subsys section has no "subsys:" key naming the subsystem`,
      );
    }
    const prefix = `logging.logger_subsys.${subsys.value}`;
    this.#markSection(prefix, frame.line);
    for (const item of frame.items) {
      this.#set(`${prefix}.${item.key}`, item.value, item.line);
    }
    this.#set(`${prefix}.subsys`, subsys.value, subsys.line);
  }

  // Corosync keeps the old logging_daemon form: name "corosync" means our own
  // logging settings, any other name goes under logging.logging_daemon.<name>.
  #closeLoggingDaemon(frame: Frame): void {
    const name = frame.daemonName;
    if (name === undefined || name.value === "") {
      this.fail(frame.line, `logging_daemon section has no "name:" key`);
    }
    const subsys = frame.subsys?.value;
    const ours = name.value === "corosync";
    let prefix: string;
    if (subsys === undefined) {
      prefix = ours ? "logging" : `logging.logging_daemon.${name.value}`;
    } else {
      prefix = ours
        ? `logging.logger_subsys.${subsys}`
        : `logging.logging_daemon.${name.value}.${subsys}`;
    }
    for (const item of frame.items) {
      this.#set(`${prefix}.${item.key}`, item.value, item.line);
    }
    if (subsys !== undefined) {
      this.#set(`${prefix}.subsys`, subsys, frame.subsys!.line);
    }
    if (!ours) this.#set(`${prefix}.name`, name.value, name.line);
  }
}
