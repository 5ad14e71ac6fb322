/**
 * The same configuration written as YAML (`.yaml` / `.yml`). A mapping
 * mirrors the sections of corosync.conf; a list stands for a repeated
 * section or key:
 *
 * ```yaml
 * totem:
 *   cluster_name: alpha
 *   interface:            # one mapping or a list of them
 *     - linknumber: 0
 *       knet_link_priority: 10
 * nodelist:
 *   node:                 # a list: nodelist.node.0, nodelist.node.1, …
 *     - { nodeid: 1, ring0_addr: 10.0.0.1 }
 *     - { nodeid: 2, ring0_addr: 10.0.0.2 }
 * logging:
 *   logger_subsys:        # a list of { subsys: NAME, … } or NAME: { … }
 *     QUORUM: { debug: "on" }
 * uidgid:
 *   uid: [hacluster, alice]
 * ```
 *
 * Scalars are read with the YAML failsafe schema, so every value is the
 * string as written (`yes`, `on`, `3000`, `0x10`) and goes through exactly
 * the same checks as a corosync.conf value. Pure: no I/O. The yaml package
 * reads `LOG_TOKENS` / `LOG_STREAM` from the environment, so callers need
 * `--allow-env=LOG_TOKENS,LOG_STREAM` (DENO_NOTES.md section 2).
 *
 * @module
 */
import {
  isAlias,
  isMap,
  isScalar,
  isSeq,
  LineCounter,
  parseDocument,
  type YAMLMap,
} from "yaml";
import { FlatBuilder } from "./_flat_builder.ts";
import type { ParsedConfig } from "./flat.ts";

type YamlDocument = ReturnType<typeof parseDocument>;

/** Parses YAML text into cmap keys; throws `ConfigError` with the line. */
export function parseYamlConf(text: string, file: string): ParsedConfig {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, {
    schema: "failsafe",
    lineCounter,
    prettyErrors: true,
    uniqueKeys: true,
  });
  const builder = new FlatBuilder(file);
  const error = doc.errors[0];
  if (error !== undefined) {
    const line = error.linePos?.[0].line ??
      lineCounter.linePos(error.pos[0]).line;
    builder.fail(line, `invalid YAML: ${firstSentence(error.message)}`);
  }
  for (const warning of doc.warnings) {
    const line = warning.linePos?.[0].line ??
      lineCounter.linePos(warning.pos[0]).line;
    builder.warn(line, `YAML: ${firstSentence(warning.message)}`);
  }
  new YamlWalker(doc, lineCounter, builder).walkTop();
  return builder.finish();
}

// The yaml package appends " at line L, column C:" and a source excerpt.
function firstSentence(message: string): string {
  return message.split("\n")[0].replace(/ at line \d+, column \d+:?$/, "");
}

class YamlWalker {
  constructor(
    readonly doc: YamlDocument,
    readonly lineCounter: LineCounter,
    readonly builder: FlatBuilder,
  ) {}

  walkTop(): void {
    const top = this.#resolve(this.doc.contents);
    if (top === null || top === undefined) return;
    if (isScalar(top) && scalarText(top.value) === "") return;
    if (!isMap(top)) {
      this.builder.fail(
        this.#line(top),
        "the top level must be a mapping of sections (totem:, nodelist:, quorum:, logging:, …)",
      );
    }
    this.#walkMap(top);
  }

  #walkMap(map: YAMLMap): void {
    for (const pair of map.items) {
      const keyNode = this.#resolve(pair.key);
      if (!isScalar(keyNode)) {
        this.builder.fail(
          this.#line(keyNode),
          "mapping keys must be plain names",
        );
      }
      const key = scalarText(keyNode.value);
      const line = this.#line(keyNode);
      const value = this.#resolve(pair.value);
      const path = this.builder.depth === 0
        ? key
        : `${this.builder.openPath}.${key}`;
      if (isMap(value)) {
        if (path === "logging.logger_subsys" && !hasKey(value, "subsys")) {
          this.#walkSubsysByName(value);
        } else {
          this.#section(key, value, line);
        }
      } else if (isSeq(value)) {
        for (const element of value.items) {
          const item = this.#resolve(element);
          if (isMap(item)) {
            this.#section(key, item, this.#line(item) || line);
          } else if (isScalar(item) || item === null) {
            this.builder.item(
              key,
              scalarText(item?.value),
              this.#line(item) || line,
            );
          } else {
            this.builder.fail(
              this.#line(item) || line,
              `lists of lists are not allowed (in "${path}")`,
            );
          }
        }
      } else {
        this.builder.item(
          key,
          scalarText(isScalar(value) ? value.value : ""),
          line,
        );
      }
    }
  }

  #section(name: string, map: YAMLMap, line: number): void {
    this.builder.openSection(name, line);
    this.#walkMap(map);
    this.builder.closeSection(line);
  }

  // logger_subsys: { QUORUM: { debug: on } } is the YAML-friendly form of
  // logger_subsys { subsys: QUORUM  debug: on }.
  #walkSubsysByName(map: YAMLMap): void {
    for (const pair of map.items) {
      const keyNode = this.#resolve(pair.key);
      const value = this.#resolve(pair.value);
      const line = this.#line(keyNode);
      if (!isScalar(keyNode) || !isMap(value)) {
        this.builder.fail(
          line,
          "logging.logger_subsys must map subsystem names to mappings (QUORUM: { debug: on }) or list { subsys: NAME, … } entries",
        );
      }
      this.builder.openSection("logger_subsys", line);
      this.builder.item("subsys", scalarText(keyNode.value), line);
      this.#walkMap(value);
      this.builder.closeSection(line);
    }
  }

  #resolve(node: unknown): unknown {
    return isAlias(node) ? node.resolve(this.doc) : node;
  }

  #line(node: unknown): number {
    const range = (node as { range?: [number, number, number] } | null)?.range;
    return range ? this.lineCounter.linePos(range[0]).line : 0;
  }
}

function hasKey(map: YAMLMap, key: string): boolean {
  return map.items.some((pair) =>
    isScalar(pair.key) && scalarText(pair.key.value) === key
  );
}

function scalarText(value: unknown): string {
  return value === null || value === undefined ? "" : String(value);
}
