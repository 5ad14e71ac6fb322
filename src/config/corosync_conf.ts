/**
 * Parser for corosync.conf(5) syntax, line by line the way Corosync's
 * `parse_section()` (exec/coroparse.c) reads it:
 *
 * - blank lines and lines whose first non-blank character is `#` are
 *   skipped; `#` later in a line is part of the value;
 * - a line containing `{` opens a section named by the text before it
 *   (a trailing `:` is dropped, so `totem: {` works); nothing may follow `{`;
 * - otherwise a line containing `:` is `key: value`: the key is the text
 *   before the first colon, the value is the rest of the line, trimmed
 *   (IPv6 addresses keep their colons). There is no quoting: quotes stay
 *   part of the value, as in Corosync (we warn);
 * - otherwise the line must be exactly `}`.
 *
 * Same-name sections merge; repeated keys overwrite with a warning; the
 * special sections are re-keyed by `FlatBuilder`. Pure: no I/O.
 *
 * @module
 */
import { FlatBuilder } from "./_flat_builder.ts";
import type { ParsedConfig } from "./flat.ts";

// Corosync strips spaces, tabs and 0xA0 (no-break space) around tokens.
const BLANK = " \t\u00a0";

function trimBlank(s: string): string {
  let start = 0;
  let end = s.length;
  while (start < end && BLANK.includes(s[start])) start++;
  while (end > start && BLANK.includes(s[end - 1])) end--;
  return s.slice(start, end);
}

// remove_whitespace(s, 1): also drops trailing ':' and '{'.
function trimName(s: string): string {
  let name = trimBlank(s);
  while (name.length > 0 && (name.endsWith(":") || name.endsWith("{"))) {
    name = trimBlank(name.slice(0, -1));
  }
  return name;
}

/**
 * Parses corosync.conf text into cmap keys. Throws `ConfigError`
 * (`${file}:${line}: reason`) on syntax errors; returns warnings for
 * overwritten keys and quoted values.
 */
export function parseCorosyncConf(text: string, file: string): ParsedConfig {
  const builder = new FlatBuilder(file);
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const lineNo = i + 1;
    let line = lines[i];
    if (line.endsWith("\r")) line = line.slice(0, -1);
    const trimmed = trimBlank(line);
    if (trimmed === "" || trimmed.startsWith("#")) continue;

    const brace = line.indexOf("{");
    if (brace >= 0) {
      const name = trimName(line.slice(0, brace));
      if (name === "") {
        builder.fail(lineNo, `missing section name before "{"`);
      }
      if (trimBlank(line.slice(brace + 1)) !== "") {
        builder.fail(
          lineNo,
          `unexpected text after "{" in section "${name}": put each key on its own line`,
        );
      }
      builder.openSection(name, lineNo);
      continue;
    }

    const colon = line.indexOf(":");
    if (colon >= 0) {
      const key = trimName(line.slice(0, colon));
      const value = trimBlank(line.slice(colon + 1));
      if (key === "") builder.fail(lineNo, `missing key name before ":"`);
      if (/^(".*"|'.*')$/.test(value) && value.length >= 2) {
        builder.warn(
          lineNo,
          `the quotes are part of the value of "${key}": corosync.conf has no quoting`,
        );
      }
      builder.item(key, value, lineNo);
      continue;
    }

    if (line.includes("}")) {
      if (trimmed !== "}") {
        builder.fail(
          lineNo,
          `unexpected text around "}": a closing brace must be alone on its line`,
        );
      }
      builder.closeSection(lineNo);
      continue;
    }

    builder.fail(
      lineNo,
      `expected "key: value" (missing colon?), "name {" or "}", got "${trimmed}"`,
    );
  }
  return builder.finish();
}
