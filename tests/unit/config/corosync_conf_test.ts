import assert from "node:assert/strict";
import { parseCorosyncConf } from "../../../src/config/corosync_conf.ts";
import { ConfigError } from "../../../src/config/config_error.ts";
import { flatToRecord } from "../../../src/config/flat.ts";

function values(text: string): Record<string, string> {
  return flatToRecord(parseCorosyncConf(text, "t.conf"));
}

Deno.test("parseCorosyncConf() names keys by section path and keeps lines", () => {
  const parsed = parseCorosyncConf(
    "# comment\n\ntotem {\n  token: 3000\n  quorum_x {\n    a: b\n  }\n}\n",
    "t.conf",
  );
  assert.deepEqual(parsed.entries.get("totem.token"), {
    value: "3000",
    file: "t.conf",
    line: 4,
  });
  assert.equal(parsed.entries.get("totem.quorum_x.a")?.line, 6);
  assert.equal(parsed.sections.get("totem"), 3);
  assert.deepEqual(parsed.warnings, []);
});

Deno.test("parseCorosyncConf() reads values the way coroparse.c does", () => {
  const cases: [string, string, string][] = [
    // [line inside "s {", key, expected value]
    ["  a:   spaced value\t ", "s.a", "spaced value"],
    ["  ring0_addr: fe80::1", "s.ring0_addr", "fe80::1"],
    ["  a: x # not a comment", "s.a", "x # not a comment"],
    ['  name: "quoted"', "s.name", '"quoted"'],
    ["  empty:", "s.empty", ""],
    ["  a:b", "s.a", "b"],
    ["\u00a0 a: nbsp\u00a0", "s.a", "nbsp"],
  ];
  for (const [line, key, expected] of cases) {
    assert.equal(values(`s {\n${line}\n}\n`)[key], expected, line);
  }
});

Deno.test("parseCorosyncConf() accepts CRLF, 'name: {' and '#' after blanks", () => {
  assert.deepEqual(
    values("totem: {\r\n   # indented comment\r\n\tversion: 2\r\n}\r\n"),
    { "totem.version": "2" },
  );
});

Deno.test("parseCorosyncConf() merges sections of the same name", () => {
  assert.deepEqual(
    values(
      "totem {\n token: 1000\n}\nquorum {\n provider: p\n}\ntotem {\n join: 60\n}\n",
    ),
    { "totem.token": "1000", "totem.join": "60", "quorum.provider": "p" },
  );
});

Deno.test("parseCorosyncConf() numbers nodes across nodelist sections", () => {
  const text = [
    "nodelist {",
    "  node {\n    ring0_addr: 10.0.0.1\n    nodeid: 1\n  }",
    "  node {\n    ring0_addr: 10.0.0.2\n  }",
    "}",
    "nodelist {\n  node {\n    ring0_addr: 10.0.0.3\n  }\n}",
  ].join("\n");
  const parsed = parseCorosyncConf(text, "t.conf");
  assert.deepEqual(flatToRecord(parsed), {
    "nodelist.node.0.nodeid": "1",
    "nodelist.node.0.ring0_addr": "10.0.0.1",
    "nodelist.node.1.ring0_addr": "10.0.0.2",
    "nodelist.node.2.ring0_addr": "10.0.0.3",
  });
  assert.equal(parsed.sections.get("nodelist.node.1"), 6);
});

Deno.test("parseCorosyncConf() keys interfaces by linknumber or ringnumber", () => {
  const text = "totem {\n" +
    " interface {\n  mcastport: 6000\n  linknumber: 1\n  member {\n   memberaddr: 10.0.0.9\n  }\n }\n" +
    " interface {\n  ringnumber: 2\n  bindnetaddr: 10.2.0.0\n }\n" +
    " interface {\n  ttl: 1\n }\n" +
    "}\n";
  const parsed = parseCorosyncConf(text, "t.conf");
  assert.deepEqual(flatToRecord(parsed), {
    "totem.interface.0.ttl": "1",
    "totem.interface.1.mcastport": "6000",
    "totem.interface.1.member.0": "10.0.0.9",
    "totem.interface.2.bindnetaddr": "10.2.0.0",
  });
  assert.equal(parsed.entries.get("totem.interface.1.mcastport")?.line, 3);
  assert.equal(parsed.sections.get("totem.interface.1"), 2);
});

Deno.test("parseCorosyncConf() keys logger_subsys by subsys", () => {
  const text =
    "logging {\n debug: off\n logger_subsys {\n  debug: on\n  subsys: QUORUM\n }\n}\n";
  const parsed = parseCorosyncConf(text, "t.conf");
  assert.deepEqual(flatToRecord(parsed), {
    "logging.debug": "off",
    "logging.logger_subsys.QUORUM.debug": "on",
    "logging.logger_subsys.QUORUM.subsys": "QUORUM",
  });
  assert.equal(
    parsed.entries.get("logging.logger_subsys.QUORUM.subsys")?.line,
    5,
  );
});

Deno.test("parseCorosyncConf() maps logging_daemon the way corosync does", () => {
  assert.deepEqual(
    values(
      "logging {\n logging_daemon {\n  name: corosync\n  subsys: CPG\n  debug: on\n }\n" +
        " logging_daemon {\n  name: corosync\n  to_syslog: no\n }\n}\n",
    ),
    {
      "logging.logger_subsys.CPG.debug": "on",
      "logging.logger_subsys.CPG.subsys": "CPG",
      "logging.to_syslog": "no",
    },
  );
});

Deno.test("parseCorosyncConf() turns uidgid entries into keys", () => {
  assert.deepEqual(
    values("uidgid {\n uid: hacluster\n uid: alice\n gid: haclient\n}\n"),
    {
      "uidgid.gid.haclient": "1",
      "uidgid.uid.alice": "1",
      "uidgid.uid.hacluster": "1",
    },
  );
});

Deno.test("parseCorosyncConf() warns on overwritten keys and keeps the last", () => {
  const parsed = parseCorosyncConf(
    "totem {\n token: 1000\n token: 2000\n}\ntotem {\n token: 3000\n}\n",
    "t.conf",
  );
  assert.equal(parsed.entries.get("totem.token")?.value, "3000");
  assert.deepEqual(parsed.warnings.map((w) => w.line), [3, 6]);
  assert.match(
    parsed.warnings[0].message,
    /duplicate key totem\.token \(first set at line 2\)/,
  );
});

Deno.test("parseCorosyncConf() warns that quotes are kept", () => {
  const parsed = parseCorosyncConf(
    'totem {\n cluster_name: "a b"\n}\n',
    "t.conf",
  );
  assert.equal(parsed.entries.get("totem.cluster_name")?.value, '"a b"');
  assert.equal(parsed.warnings.length, 1);
  assert.match(parsed.warnings[0].message, /quotes are part of the value/);
});

Deno.test("parseCorosyncConf() rejects bad syntax with file:line", () => {
  const cases: [string, number, RegExp][] = [
    ["totem {\n", 1, /section "totem" is missing its closing brace/],
    ["totem {\n node {\n }\n", 1, /missing its closing brace/],
    ["}\n", 1, /unexpected closing brace/],
    ["a {\n b\n}\n", 2, /missing colon/],
    ["key: value\n", 1, /outside any section/],
    ["a { b: c\n}\n", 1, /unexpected text after "\{"/],
    ["{\n}\n", 1, /missing section name/],
    ["a {\n : v\n}\n", 2, /missing key name/],
    ["a {\n x } \n}\n", 2, /closing brace must be alone/],
    ["a b {\n}\n", 1, /invalid section name "a b"/],
    ["a {\n my key: v\n}\n", 2, /invalid key name "my key"/],
    ["uidgid {\n sub {\n }\n}\n", 2, /subsections are not allowed in uidgid/],
    ["totem {\n interface {\n x {\n }\n }\n}\n", 3, /only "member \{"/],
    [
      "totem {\n interface {\n member {\n x: 1\n }\n }\n}\n",
      4,
      /only memberaddr/,
    ],
    [
      "totem {\n interface {\n linknumber: one\n }\n}\n",
      3,
      /must be a link number/,
    ],
    ["logging {\n logging_daemon {\n debug: on\n }\n}\n", 2, /no "name:" key/],
    [`a {\n ${"k".repeat(300)}: v\n}\n`, 2, /longer than 255 characters/],
  ];
  for (const [text, line, reason] of cases) {
    assert.throws(
      () => parseCorosyncConf(text, "bad.conf"),
      (error: unknown) => {
        assert.ok(error instanceof ConfigError, String(error));
        assert.equal(error.file, "bad.conf");
        assert.equal(
          error.line,
          line,
          `${JSON.stringify(text)}: ${error.message}`,
        );
        assert.match(error.message, new RegExp(`^bad\\.conf:${line}: `));
        assert.match(error.reason, reason);
        return true;
      },
    );
  }
});
