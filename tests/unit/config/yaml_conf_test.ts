import assert from "node:assert/strict";
import { parseYamlConf } from "../../../src/config/yaml_conf.ts";
import { parseCorosyncConf } from "../../../src/config/corosync_conf.ts";
import { ConfigError } from "../../../src/config/config_error.ts";
import { flatToRecord } from "../../../src/config/flat.ts";

const FIXTURES = new URL("../../fixtures/config/", import.meta.url);

function fixture(name: string): string {
  return Deno.readTextFileSync(new URL(name, FIXTURES));
}

Deno.test("parseYamlConf() gives the same flat map as the corosync.conf fixture", () => {
  const pairs: [string, string][] = [
    ["multi_link.conf", "multi_link.yaml"],
    ["logging_subsys.conf", "logging_subsys.yml"],
  ];
  for (const [conf, yaml] of pairs) {
    assert.deepEqual(
      flatToRecord(parseYamlConf(fixture(yaml), yaml)),
      flatToRecord(parseCorosyncConf(fixture(conf), conf)),
      yaml,
    );
  }
});

Deno.test("parseYamlConf() keeps scalars as written and records lines", () => {
  const parsed = parseYamlConf(
    "totem:\n  token: 0x10\n  secauth: on\n  key: 'a b'\n  empty:\n",
    "c.yaml",
  );
  assert.deepEqual(flatToRecord(parsed), {
    "totem.empty": "",
    "totem.key": "a b",
    "totem.secauth": "on",
    "totem.token": "0x10",
  });
  assert.deepEqual(parsed.entries.get("totem.secauth"), {
    value: "on",
    file: "c.yaml",
    line: 3,
  });
  assert.equal(parsed.sections.get("totem"), 1);
});

Deno.test("parseYamlConf() accepts a single mapping for a repeated section", () => {
  assert.deepEqual(
    flatToRecord(
      parseYamlConf(
        "totem:\n  interface:\n    linknumber: 1\n    mcastport: 6000\n" +
          "nodelist:\n  node:\n    ring0_addr: 10.0.0.1\n" +
          "logging:\n  logger_subsys:\n    subsys: CPG\n    debug: on\n",
        "c.yaml",
      ),
    ),
    {
      "logging.logger_subsys.CPG.debug": "on",
      "logging.logger_subsys.CPG.subsys": "CPG",
      "nodelist.node.0.ring0_addr": "10.0.0.1",
      "totem.interface.1.mcastport": "6000",
    },
  );
});

Deno.test("parseYamlConf() resolves aliases", () => {
  assert.deepEqual(
    flatToRecord(parseYamlConf("a:\n  x: &v 5\n  y: *v\n", "c.yaml")),
    { "a.x": "5", "a.y": "5" },
  );
});

Deno.test("parseYamlConf() treats an empty document as an empty config", () => {
  assert.equal(parseYamlConf("# nothing\n", "c.yaml").entries.size, 0);
  assert.equal(parseYamlConf("", "c.yaml").entries.size, 0);
});

Deno.test("parseYamlConf() rejects bad input with file:line", () => {
  const cases: [string, number, RegExp][] = [
    [
      "totem:\n  version: 2\n   token: 3000\n",
      2,
      /invalid YAML: Nested mappings/,
    ],
    ["totem:\n  a: 1\n  a: 2\n", 3, /invalid YAML: Map keys must be unique/],
    ["- a\n- b\n", 1, /top level must be a mapping/],
    ["x: 1\n", 1, /outside any section/],
    ["a:\n  b:\n    - [1, 2]\n", 3, /lists of lists/],
    [
      "logging:\n  logger_subsys:\n    QUORUM: on\n",
      3,
      /must map subsystem names/,
    ],
    ["uidgid:\n  user: x\n", 2, /only uid and gid/],
    ["a: 1\n---\nb: 2\n", 2, /invalid YAML/],
  ];
  for (const [text, line, reason] of cases) {
    assert.throws(
      () => parseYamlConf(text, "bad.yaml"),
      (error: unknown) => {
        assert.ok(error instanceof ConfigError, String(error));
        assert.equal(
          error.line,
          line,
          `${JSON.stringify(text)}: ${error.message}`,
        );
        assert.match(error.message, new RegExp(`^bad\\.yaml:${line}: `));
        assert.match(error.reason, reason);
        return true;
      },
    );
  }
});
