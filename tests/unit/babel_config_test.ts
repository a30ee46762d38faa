import assert from "node:assert/strict";
import { prefixFromCn } from "../../core/addressing.ts";
import {
  BabelConfigError,
  type BabelConfigInput,
  buildBabelConfig,
  tunnelParams,
  tunnelTiming,
} from "../../core/babel/config.ts";
import { BABEL_DEFAULT } from "../../core/constants.ts";

// VECTORS.md §15: node 6/16 of 2001:db8:42::/48, hello 15, sign key 000102…0f,
// server tap re6stnet-udp, client tap re6stnet1.
const NETWORK = "001000000000000100001101101110000000000001000010";
const KEY = Uint8Array.from({ length: 16 }, (_, i) => i);
const KEY2 = Uint8Array.from({ length: 16 }, (_, i) => 0xf0 + i);

function input(over: Partial<BabelConfigInput> = {}): BabelConfigInput {
  return {
    network: NETWORK,
    prefix: prefixFromCn("6/16"),
    helloS: 15,
    babelDefault: BABEL_DEFAULT,
    hmacSign: KEY,
    gateway: false,
    tunnelInterfaces: ["re6stnet-udp", "re6stnet1"],
    interfaces: [],
    extraArgs: [],
    paths: {
      config: "/var/run/re6stnet/babeld.conf",
      socket: "/var/run/re6stnet/babeld.sock",
      state: "/var/lib/re6stnet/babeld.state",
      log: "/var/log/re6stnet/babeld.log",
    },
    ...over,
  };
}

/** The -C statements of the reference command line of VECTORS.md §15 (plain node). */
const REFERENCE_STATEMENTS = [
  "redistribute local deny",
  "redistribute ip 2001:db8:42:6::1/64 eq 64",
  "key type blake2s128 id sign value 000102030405060708090a0b0c0d0e0f",
  "default max-rtt-penalty 5000 rtt-max 500 rtt-decay 125 key sign",
  "install ip ::/0 eq 0 src-ip ::/0 src-eq 0 src-prefix 2001:db8:42::/48",
  "redistribute deny",
  "install pref-src 2001:db8:42:6::1",
  "interface re6stnet-udp type tunnel",
  "interface re6stnet1 type tunnel",
];

/** Statements of a generated file, without comments. */
function statements(text: string): string[] {
  return text.split("\n").filter((l) => l && !l.startsWith("#"));
}

/**
 * Applies our changes to reference statements: -X → socket (§8.4.4), install → in deny
 * (§8.4.4), and faster hellos on tunnels (hello 15 s: every 3.75 s; babeld updates every 4).
 */
function stock(reference: string[], socket: string): string[] {
  return [
    `local-path-readwrite ${socket}`,
    ...reference.map((s) =>
      s.startsWith("install ip ::/0 eq 0 src-ip ::/0 src-eq 0")
        ? "in ip ::/0 eq 0 src-ip ::/0 src-eq 0 deny"
        : s.endsWith(" type tunnel")
        ? `${s} hello-interval 3.75`
        : s
    ),
  ];
}

Deno.test("a plain node gets the reference statements in the reference order, adapted for stock babeld", () => {
  const c = buildBabelConfig(input());
  assert.deepEqual(statements(c.configText), stock(REFERENCE_STATEMENTS, c.paths.socket));
});

Deno.test("the command line carries the reference options and reads only the generated file", () => {
  const c = buildBabelConfig(input());
  assert.deepEqual(c.args, [
    "-h",
    "15",
    "-H",
    "15",
    "-L",
    "/var/log/re6stnet/babeld.log",
    "-S",
    "/var/lib/re6stnet/babeld.state",
    "-I",
    "",
    "-s",
    "-c",
    "/var/run/re6stnet/babeld.conf",
    "re6stnet-udp",
    "re6stnet1",
  ]);
  assert.ok(!c.args.includes("-X"), "the patched -X option does not exist in stock babeld");
  assert.ok(!c.args.join(" ").includes("000102"), "keys never appear on the command line");
});

Deno.test("user -B arguments come before the interfaces, -i interfaces before the taps", () => {
  const c = buildBabelConfig(
    input({ extraArgs: ["-d", "1"], interfaces: ["eth1"], tunnelInterfaces: ["re6stnet1"] }),
  );
  assert.deepEqual(c.args.slice(-5), [
    "/var/run/re6stnet/babeld.conf",
    "-d",
    "1",
    "eth1",
    "re6stnet1",
  ]);
  assert.ok(!c.configText.includes("interface eth1"), "-i interfaces use the default parameters");
});

Deno.test("a gateway announces the default route from the network instead of refusing plain defaults", () => {
  const c = buildBabelConfig(input({ gateway: true }));
  const reference = REFERENCE_STATEMENTS.map((s) =>
    s.startsWith("install ip ::/0") ? "redistribute ip ::/0 eq 0 src-prefix 2001:db8:42::/48" : s
  );
  assert.deepEqual(statements(c.configText), stock(reference, c.paths.socket));
});

Deno.test("the IPv4 payload is redistributed after the default line and used as preferred source", () => {
  const lines = statements(
    buildBabelConfig(input({ ipv4: { address: "10.42.6.1", length: 24 } })).configText,
  );
  const d = lines.findIndex((l) => l.startsWith("default "));
  assert.equal(lines[d + 1], "redistribute ip 10.42.6.1/24 eq 24");
  const p = lines.indexOf("install pref-src 2001:db8:42:6::1");
  assert.equal(lines[p + 1], "install pref-src 10.42.6.1");
});

// VECTORS.md §14, "Resulting babeld statements on a node".
Deno.test("HMAC keys map to key and default statements as in the rotation table", () => {
  const keyLines = (over: Partial<BabelConfigInput>) =>
    statements(buildBabelConfig(input(over)).configText).filter((l) =>
      l.startsWith("key ") || l.startsWith("default ")
    );
  const sign = "key type blake2s128 id sign value 000102030405060708090a0b0c0d0e0f";
  assert.deepEqual(keyLines({}), [sign, `default ${BABEL_DEFAULT} key sign`]);
  assert.deepEqual(keyLines({ hmacAccept: KEY2 }), [
    sign,
    "key type blake2s128 id accept value f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff",
    `default ${BABEL_DEFAULT} key sign`,
  ]);
  assert.deepEqual(keyLines({ hmacAccept: new Uint8Array() }), [
    sign,
    `default ${BABEL_DEFAULT} key sign accept-bad-signatures true`,
  ]);
  assert.deepEqual(keyLines({ hmacSign: undefined }), [`default ${BABEL_DEFAULT}`]);
});

Deno.test("run-time tap parameters repeat the default statement, keys and an optional rxcost", () => {
  const c = buildBabelConfig(input());
  // The exact form verified in PROTOCOL.md §8.4.4.
  assert.equal(
    c.tunnelParams,
    "type tunnel max-rtt-penalty 5000 rtt-max 500 rtt-decay 125 " +
      "hello-interval 3.75 key sign",
  );
  assert.equal(
    tunnelParams({
      babelDefault: BABEL_DEFAULT,
      hmacSign: KEY,
      hmacAccept: new Uint8Array(),
      rxcost: 4096,
    }),
    "type tunnel max-rtt-penalty 5000 rtt-max 500 rtt-decay 125 key sign accept-bad-signatures true rxcost 4096",
  );
  assert.equal(tunnelParams({ babelDefault: "" }), "type tunnel");
  assert.throws(() => tunnelParams({ babelDefault: "", rxcost: 0 }), BabelConfigError);
});

Deno.test("tunnels say hello four times as often as the network, at least every second", () => {
  assert.equal(tunnelTiming(15), "hello-interval 3.75");
  assert.equal(tunnelTiming(4), "hello-interval 1");
  assert.equal(tunnelTiming(2), "hello-interval 1");
  assert.equal(tunnelTiming(0.5), "hello-interval 0.5", "never slower");
});

Deno.test("a node prefix filling all 128 bits redistributes a host route", () => {
  const c = buildBabelConfig(input({ prefix: "1".repeat(80) }));
  assert.ok(
    c.configText.includes("redistribute ip 2001:db8:42:ffff:ffff:ffff:ffff:ffff/128 eq 128\n"),
  );
});

Deno.test("values babeld cannot take are refused with the value named", () => {
  const bad: [Partial<BabelConfigInput>, RegExp][] = [
    [{ hmacSign: new Uint8Array(15) }, /babel_hmac_sign: 15 bytes/],
    [{ hmacSign: new Uint8Array() }, /babel_hmac_sign: 0 bytes/],
    [{ hmacAccept: new Uint8Array(3) }, /babel_hmac_accept: 3 bytes/],
    [{ hmacSign: undefined, hmacAccept: KEY2 }, /accept key given without a sign key/],
    [{ babelDefault: "rtt-max 500\nredistribute local allow" }, /babel_default/],
    [{ babelDefault: "rtt-max 500 # comment" }, /babel_default/],
    [{ tunnelInterfaces: ["bad name"] }, /interface name "bad name"/],
    [{ tunnelInterfaces: ["waytoolonginterface"] }, /interface name/],
    [{ tunnelInterfaces: [], interfaces: [] }, /at least one interface/],
    [{ prefix: "" }, /node prefix/],
    [{ helloS: 0 }, /hello interval/],
    [{ ipv4: { address: "10.42.6", length: 24 } }, /IPv4 payload/],
  ];
  for (const [over, re] of bad) {
    assert.throws(() => buildBabelConfig(input(over)), (e: Error) => {
      assert.ok(e instanceof BabelConfigError, String(e));
      assert.match(e.message, re);
      return true;
    });
  }
  const paths = input().paths;
  assert.throws(
    () => buildBabelConfig(input({ paths: { ...paths, socket: "/run/my dir/babeld.sock" } })),
    /socket path/,
  );
  assert.throws(
    () => buildBabelConfig(input({ paths: { ...paths, socket: "/" + "x".repeat(120) } })),
    /socket path/,
  );
  assert.throws(
    () => buildBabelConfig(input({ paths: { ...paths, log: "babeld.log" } })),
    /log path/,
  );
});
