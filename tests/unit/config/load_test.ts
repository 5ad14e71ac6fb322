import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import {
  configFormatOf,
  loadConfigFile,
  readAuthKey,
} from "../../../src/config/load.ts";
import { ConfigError } from "../../../src/config/config_error.ts";

const FIXTURES = fileURLToPath(
  new URL("../../fixtures/config/", import.meta.url),
);
const INVALID = `${FIXTURES}invalid/`;

// [file in fixtures/config/invalid, line, reason]
const INVALID_FILES: readonly [string, number, RegExp][] = [
  ["unclosed_section.conf", 1, /section "totem" is missing its closing brace/],
  ["unexpected_brace.conf", 4, /unexpected closing brace/],
  ["missing_colon.conf", 3, /expected "key: value" \(missing colon\?\)/],
  ["key_outside_section.conf", 2, /key "cluster_name" is outside any section/],
  ["text_after_brace.conf", 1, /unexpected text after "\{"/],
  [
    "non_integer_token.conf",
    3,
    /totem\.token must be a whole number \(milliseconds\), got "3s"/,
  ],
  [
    "unknown_transport.conf",
    3,
    /totem\.transport must be one of udpu, udp, knet, got "tcp"/,
  ],
  [
    "consensus_below_join.conf",
    4,
    /totem\.consensus \(100 ms\) must be at least totem\.join \(200 ms\)/,
  ],
  [
    "cipher_without_hash.conf",
    4,
    /crypto_cipher aes256 requires totem\.crypto_hash/,
  ],
  [
    "crypto_without_key.conf",
    5,
    /totem\.keyfile is empty and there is no totem\.key/,
  ],
  ["too_many_links.conf", 8, /at most 8 links are supported/],
  ["duplicate_nodeid.conf", 10, /duplicate nodeid 4/],
  ["nodeid_zero.conf", 7, /nodeid 0 is reserved/],
  ["udpu_without_nodelist.conf", 3, /transport udpu needs a nodelist/],
  ["mismatched_rings.conf", 10, /node 1 has 1 link\(s\) but node 0 has 2/],
  [
    "hostname_address.conf",
    7,
    /"node1\.example\.com", which is not an IP address: host names are not resolved yet/,
  ],
  ["subsys_without_name.conf", 2, /logger_subsys section has no "subsys:" key/],
  ["uidgid_bad_key.conf", 3, /only uid and gid are allowed in uidgid/],
  ["linknumber_too_large.conf", 3, /links are numbered 0\.\.7/],
  ["knet_without_nodeid.conf", 7, /transport knet requires an explicit nodeid/],
  ["ring_gap.conf", 8, /ring2_addr but no ring1_addr/],
  ["bad_boolean.conf", 10, /logging\.to_syslog must be yes or no/],
  ["ttl_without_multicast.conf", 5, /ttl can only be set for transport udp/],
  ["wrong_version.conf", 2, /totem\.version must be 2, got 1/],
  ["bad_yaml_indent.yaml", 3, /invalid YAML: Nested mappings/],
  ["yaml_top_level_key.yaml", 1, /key "cluster_name" is outside any section/],
  ["yaml_duplicate_nodeid.yaml", 7, /duplicate nodeid 1/],
  ["yaml_not_a_mapping.yaml", 1, /top level must be a mapping/],
];

Deno.test("loadConfigFile() refuses each invalid fixture with its file:line", async () => {
  for (const [name, line, reason] of INVALID_FILES) {
    const path = INVALID + name;
    await assert.rejects(
      loadConfigFile(path, { readAuthKey: false }),
      (error: unknown) => {
        assert.ok(error instanceof ConfigError, `${name}: ${error}`);
        assert.equal(error.file, path);
        assert.equal(error.line, line, `${name}: ${error.message}`);
        assert.ok(error.message.startsWith(`${path}:${line}: `), error.message);
        assert.match(error.reason, reason, `${name}: ${error.message}`);
        return true;
      },
    );
  }
});

Deno.test("loadConfigFile() loads every valid fixture without warnings", async () => {
  for (
    const name of [
      "debian_default.conf",
      "two_node.conf",
      "multi_link.conf",
      "multi_link.yaml",
      "crypto.conf",
      "logging_subsys.conf",
      "logging_subsys.yml",
      "udp_multicast.conf",
    ]
  ) {
    const loaded = await loadConfigFile(FIXTURES + name, {
      readAuthKey: false,
    });
    assert.deepEqual(loaded.warnings, [], name);
    assert.equal(loaded.format, configFormatOf(name));
    assert.equal(loaded.config.file, FIXTURES + name);
  }
});

Deno.test("loadConfigFile() gives the same model for YAML and corosync.conf", async () => {
  const conf = await loadConfigFile(FIXTURES + "multi_link.conf");
  const yaml = await loadConfigFile(FIXTURES + "multi_link.yaml");
  const strip = (c: typeof conf.config) =>
    JSON.stringify({
      ...c,
      file: "",
      nodelist: c.nodelist.map((n) => ({ ...n, file: "", line: 0 })),
    });
  assert.equal(strip(yaml.config), strip(conf.config));
});

Deno.test("loadConfigFile() says when the file cannot be read", async () => {
  await assert.rejects(
    loadConfigFile("/nonexistent/corosync.conf"),
    (error: unknown) =>
      error instanceof ConfigError &&
      error.message ===
        "/nonexistent/corosync.conf: cannot read the configuration file: no such file",
  );
});

Deno.test("loadConfigFile() reads the cluster key when crypto is on", async () => {
  const dir = await Deno.makeTempDir({ prefix: "denosync_config_test_" });
  try {
    const keyfile = `${dir}/authkey`;
    const key = new Uint8Array(256).map((_, i) => i);
    await Deno.writeFile(keyfile, key);
    const conf = `${dir}/corosync.conf`;
    await Deno.writeTextFile(
      conf,
      `totem {\n crypto_cipher: aes256\n crypto_hash: sha256\n keyfile: ${keyfile}\n}\n` +
        "nodelist {\n node {\n  ring0_addr: 10.0.0.1\n }\n}\n",
    );
    const loaded = await loadConfigFile(conf);
    assert.deepEqual(loaded.authKey, key);

    await Deno.writeFile(keyfile, new Uint8Array(8));
    await assert.rejects(loadConfigFile(conf), (error: unknown) => {
      assert.ok(error instanceof ConfigError);
      assert.equal(error.line, 4);
      assert.match(
        error.reason,
        /key file .* is 8 bytes; the cluster key must be 32 to 4096 bytes/,
      );
      return true;
    });

    await Deno.remove(keyfile);
    await assert.rejects(loadConfigFile(conf), (error: unknown) => {
      assert.ok(error instanceof ConfigError);
      assert.equal(error.line, 4);
      assert.match(
        error.reason,
        /cannot be read: no such file \(create one with denosync keygen\)/,
      );
      return true;
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("readAuthKey() uses the inline key as UTF-8 bytes", async () => {
  const loaded = await loadConfigFile(FIXTURES + "crypto.conf", {
    readAuthKey: false,
  });
  const inline = "k".repeat(40);
  const key = await readAuthKey({
    ...loaded.config,
    totem: { ...loaded.config.totem, key: inline },
  });
  assert.deepEqual(key, new TextEncoder().encode(inline));
});

Deno.test("configFormatOf() picks YAML by extension", () => {
  assert.equal(configFormatOf("/etc/denosync/cluster.yaml"), "yaml");
  assert.equal(configFormatOf("c.YML"), "yaml");
  assert.equal(configFormatOf("/etc/corosync/corosync.conf"), "corosync");
});
