import assert from "node:assert/strict";
import { UsageError } from "../../core/errors.ts";
import { CONF_SPEC, toConfOptions } from "../../core/options/conf.ts";
import { renderHelp } from "../../core/options/help.ts";
import { formatListenAddress, parseListenAddress } from "../../core/options/listen.ts";
import { NODE_SPEC, toNodeOptions } from "../../core/options/node.ts";
import { parseCommandLine } from "../../core/options/parser.ts";
import { REGISTRY_SPEC, toRegistryOptions } from "../../core/options/registry.ts";
import { shellSplit } from "../../core/options/shell.ts";
import { STATUS_SPEC, toStatusOptions } from "../../core/options/status.ts";

const REQUIRED = ["--registry", "http://r/", "--ca", "ca", "--cert", "c", "--key", "k"];

function files(map: Record<string, string>, cwd = "/etc/re6stnet") {
  return {
    cwd,
    readTextFile(path: string) {
      if (!(path in map)) throw new Error("No such file or directory");
      return map[path];
    },
  };
}

function node(argv: string[], map: Record<string, string> = {}) {
  return toNodeOptions(parseCommandLine(NODE_SPEC, argv, files(map)));
}

function usageError(fn: () => unknown, pattern: RegExp) {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof UsageError, `expected UsageError, got ${e}`);
    assert.match(e.message, pattern);
    return true;
  });
}

Deno.test("node options get the reference defaults", () => {
  const o = node(REQUIRED);
  assert.equal(o.run, "/var/run/re6stnet");
  assert.equal(o.state, "/var/lib/re6stnet");
  assert.equal(o.log, "/var/log/re6stnet");
  assert.equal(o.verbose, 2);
  assert.equal(o.mainInterface, "lo");
  assert.deepEqual(o.disableProto, ["udp", "udp6"]);
  assert.deepEqual(o.pp, [[1194, "tcp"]]);
  assert.equal(o.clientCount, undefined);
});

Deno.test("short options take attached values and long options accept unique prefixes", () => {
  const o = node([...REQUIRED, "-v3", "--main-int", "eth0", "--verb=4", "-Ilo2"]);
  assert.equal(o.verbose, 4);
  assert.equal(o.mainInterface, "lo2");
});

Deno.test("an ambiguous abbreviation names the candidates", () => {
  usageError(() => node([...REQUIRED, "--ma", "3"]), /ambiguous option --ma.*--main-interface/);
});

Deno.test("append options accumulate and nargs options take tuples", () => {
  const o = node([
    ...REQUIRED,
    "--disable-proto",
    "none",
    "--pp",
    "1194",
    "udp",
    "--pp",
    "1195",
    "tcp6",
    "-O--verb",
    "-O3",
    "--neighbour",
    "6/16",
  ]);
  assert.deepEqual(o.pp, [[1194, "udp"], [1195, "tcp6"]]);
  assert.deepEqual(o.openvpnArgs, ["--verb", "3"]);
  assert.deepEqual(o.disableProto, []);
  assert.deepEqual(o.neighbour, ["6/16"]);
});

Deno.test("a --pp on a disabled protocol is refused", () => {
  usageError(() => node([...REQUIRED, "--pp", "1194", "udp"]), /protocol udp is disabled/);
});

Deno.test("bad numbers, unknown options and missing values are one-line usage errors", () => {
  usageError(() => node([...REQUIRED, "--verbose", "x"]), /--verbose: invalid integer "x"/);
  usageError(() => node([...REQUIRED, "--verbose", "9"]), /out of range/);
  usageError(() => node([...REQUIRED, "--bogus"]), /unknown option --bogus/);
  usageError(() => node([...REQUIRED, "--ip"]), /--ip expects a value/);
  usageError(() => node([...REQUIRED, "-B", "-C"]), /-babel-arg expects a value/);
  usageError(() => node([...REQUIRED, "stray"]), /unexpected argument "stray"/);
  usageError(() => node(["--ca", "x"]), /missing required option --registry/);
  usageError(
    () => node([...REQUIRED, "--disable-proto", "sctp"]),
    /invalid choice "sctp"/,
  );
});

Deno.test("--help and --version skip the required-option check, like argparse", () => {
  assert.equal(parseCommandLine(NODE_SPEC, ["--help"], files({})).help, true);
  assert.equal(parseCommandLine(NODE_SPEC, ["-V"], files({})).version, true);
  assert.equal(parseCommandLine(NODE_SPEC, ["--ca", "x", "--version"], files({})).version, true);
  const spec = {
    ...CONF_SPEC,
    options: [
      ...CONF_SPEC.options,
      { long: "version", dest: "version", type: "flag" as const, help: "print version" },
    ],
  };
  assert.equal(parseCommandLine(spec, ["--version"], files({})).version, true);
  usageError(() => parseCommandLine(spec, [], files({})), /missing required option --registry/);
});

Deno.test("--ip takes IP literals, 'any' or 'upnp' and refuses the rest naming the option", () => {
  const ips = ["192.0.2.1", "2001:db8::1", "198.51.100.7", "::ffff:192.0.2.9"];
  assert.deepEqual(node([...REQUIRED, ...ips.flatMap((ip) => ["--ip", ip])]).ip, ips);
  assert.deepEqual(node([...REQUIRED, "--ip", "any", "--ip", "2001:db8::1"]).ip, [
    "any",
    "2001:db8::1",
  ]);
  assert.deepEqual(node([...REQUIRED, "--ip", "upnp"]).ip, ["upnp"]);
  usageError(() => node([...REQUIRED, "--ip", "999.1.1.1"]), /^option --ip: invalid IPv4 .*999/);
  usageError(() => node([...REQUIRED, "--ip", "10.0.0"]), /^option --ip: invalid IPv4/);
  usageError(() => node([...REQUIRED, "--ip", "2001:db8::g"]), /^option --ip: invalid IPv6/);
  usageError(
    () => node([...REQUIRED, "--ip", "re6st.example.com"]),
    /^option --ip: "re6st\.example\.com" is not an IP address/,
  );
  usageError(() => node([...REQUIRED, "--ip", "ANY"]), /^option --ip: "ANY" is not/);
  usageError(() => node([...REQUIRED, "--ip", "any", "--ip", "upnp"]), /at most once/);
  usageError(() => node([...REQUIRED, "--ip", "any", "--ip", "any"]), /at most once/);
  usageError(
    () => node([...REQUIRED, "--ip", "192.0.2.1", "--ip", "upnp"]),
    /^option --ip: "upnp" cannot be combined with IPv4 address "192\.0\.2\.1"/,
  );
});

Deno.test("--neighbour takes certificate CNs and refuses malformed ones naming the option", () => {
  assert.deepEqual(node([...REQUIRED, "--neighbour", "6/16", "--neighbour", "0/0"]).neighbour, [
    "6/16",
    "0/0",
  ]);
  usageError(() => node([...REQUIRED, "--neighbour", "6-16"]), /^option --neighbour: Invalid CN/);
  usageError(() => node([...REQUIRED, "--neighbour", "2001:db8::/48"]), /^option --neighbour:/);
  usageError(
    () => node([...REQUIRED, "--neighbour", "70000/16"]),
    /^option --neighbour: .*does not fit in 16 bits/,
  );
});

Deno.test("option files expand in place with comments, quotes and -x forms", () => {
  const conf = [
    "# a comment",
    "   # indented comment",
    "",
    "registry http://re6st.example.com/",
    "ca ca.crt",
    "cert cert.crt",
    "key /abs/cert.key",
    "v3",
    "O--verb",
    "O3",
    "B 'interface eth0 rxcost 10'",
    "pp 1194 tcp",
    "gateway",
    "neighbour 6/16  # trailing comments are stripped",
  ].join("\n");
  const o = node(["@re6stnet.conf"], { "/etc/re6stnet/re6stnet.conf": conf });
  assert.equal(o.registry, "http://re6st.example.com/");
  assert.equal(o.ca, "/etc/re6stnet/ca.crt");
  assert.equal(o.key, "/abs/cert.key");
  assert.equal(o.verbose, 3);
  assert.deepEqual(o.openvpnArgs, ["--verb", "3"]);
  assert.deepEqual(o.babelArgs, ["interface eth0 rxcost 10"]);
  assert.deepEqual(o.pp, [[1194, "tcp"]]);
  assert.equal(o.gateway, true);
  assert.deepEqual(o.neighbour, ["6/16"]);
});

Deno.test("the command line wins over --config wherever --config stands", () => {
  const map = { "/x/n.conf": "registry http://file/\nverbose 1\nca ca\ncert c\nkey k\nip 1.2.3.4" };
  const o = node(["--verbose", "4", "--config", "/x/n.conf", "--ip", "5.6.7.8"], map);
  assert.equal(o.verbose, 4);
  assert.equal(o.registry, "http://file/");
  assert.deepEqual(o.ip, ["1.2.3.4", "5.6.7.8"]);
  assert.equal(o.config, "/x/n.conf");
});

Deno.test("errors in option files name the file and line", () => {
  const map = { "/etc/re6stnet/bad.conf": "registry http://r/\n\nverbose loud\n" };
  usageError(() => node(["@bad.conf"], map), /^bad\.conf:3: option --verbose: invalid integer/);
  const map2 = { "/etc/re6stnet/bad.conf": "registry http://r/\nfrobnicate 3\n" };
  usageError(() => node(["@bad.conf"], map2), /^bad\.conf:2: unknown option -f/);
  const map3 = { "/etc/re6stnet/bad.conf": "B 'unterminated\n" };
  usageError(() => node(["@bad.conf"], map3), /^bad\.conf:1: unterminated single quote/);
  usageError(() => node(["@missing.conf"]), /cannot read option file missing\.conf/);
});

Deno.test("nested option files are read relative to the working folder", () => {
  const map = {
    "/etc/re6stnet/a.conf": "@b.conf\nverbose 1",
    "/etc/re6stnet/b.conf": "registry http://r/\nca ca\ncert c\nkey k\nverbose 3",
  };
  assert.equal(node(["@a.conf"], map).verbose, 1);
});

Deno.test("registry options resolve defaults, origins and the IPv4 payload", () => {
  const p = parseCommandLine(
    REGISTRY_SPEC,
    ["--ca", "ca", "--key", "k", "--client-count", "4", "--ipv4", "10.42.0.0/16", "8"],
    files({}),
  );
  const o = toRegistryOptions(p);
  assert.equal(o.port, 80);
  assert.equal(o.maxClients, 8);
  assert.deepEqual(o.authorizedOrigin, ["127.0.0.1", "::1"]);
  assert.deepEqual(o.ipv4, { network: "10.42.0.0/16", sublen: 8 });
  assert.equal(o.gracePeriod, 8640000);
  assert.equal(o.dh, undefined);
  const bad = parseCommandLine(
    REGISTRY_SPEC,
    ["--ca", "ca", "--key", "k", "--ipv4", "10.42.0.0/30", "8"],
    files({}),
  );
  usageError(() => toRegistryOptions(bad), /--ipv4: invalid bits per node/);
});

Deno.test("registry limits and the key switch delay: defaults, values, and bad values refused", () => {
  const reg = (...extra: string[]) =>
    toRegistryOptions(
      parseCommandLine(REGISTRY_SPEC, ["--ca", "ca", "--key", "k", ...extra], files({})),
    );
  const d = reg();
  assert.deepEqual(
    [d.maxConnections, d.maxConnectionsPerSource, d.rateLimit, d.keySwitchDelay],
    [1000, 64, 120, 60],
  );
  const o = reg(
    ...["--max-connections", "5000", "--max-connections-per-source", "0"],
    ...["--rate-limit", "0", "--key-switch-delay", "6"],
  );
  assert.deepEqual(
    [o.maxConnections, o.maxConnectionsPerSource, o.rateLimit, o.keySwitchDelay],
    [5000, 0, 0, 6],
  );
  usageError(() => reg("--max-connections", "0"), /max-connections/);
  usageError(() => reg("--rate-limit", "-1"), /rate-limit/);
  usageError(() => reg("--key-switch-delay", "soon"), /key-switch-delay/);
});

Deno.test("--same-country takes country codes, upper-cased; anything else is a usage error", () => {
  const parse = (...codes: string[]) =>
    toRegistryOptions(
      parseCommandLine(
        REGISTRY_SPEC,
        ["--ca", "ca", "--key", "k", ...codes.flatMap((c) => ["--same-country", c])],
        files({}),
      ),
    );
  assert.deepEqual(parse("FR", "de").sameCountry, ["FR", "DE"]);
  assert.deepEqual(parse().sameCountry, []);
  for (const bad of ["FRA", "F", "F,R", ""]) {
    usageError(() => parse(bad), /^option --same-country: expected a country code \(e\.g\. FR\)/);
  }
});

Deno.test("the node's --country is a country code, upper-cased (it goes into address lists)", () => {
  assert.equal(node([...REQUIRED, "--country", "fr"]).country, "FR");
  assert.equal(node(REQUIRED).country, undefined);
  for (const bad of ["F,R", "FRA", ""]) {
    usageError(
      () => node([...REQUIRED, "--country", bad]),
      /^option --country: expected a country code/,
    );
  }
});

Deno.test("help texts say what GEOIP2_MMDB does, 'upnp' and the status timeout", () => {
  const flat = (text: string) => text.replace(/\s+/g, " ");
  const registry = flat(renderHelp(REGISTRY_SPEC));
  assert.match(registry, /Environment: GEOIP2_MMDB=FILE names a MaxMind country/);
  assert.match(registry, /requestCertificate places a node in the community of its location/);
  assert.match(registry, /Without it .* --same-country is refused/);
  const node = flat(renderHelp(NODE_SPEC));
  assert.match(node, /GEOIP2_MMDB=FILE .* countries of peer addresses that carry none/);
  assert.match(
    flat(renderHelp(NODE_SPEC)),
    /'upnp' \(map the IPv4 servers' ports on the LAN's UPnP gateway.*Without an IPv4 value UPnP is tried/,
  );
  const status = renderHelp(STATUS_SPEC);
  assert.match(flat(status), /with --registry, the time limit of each request/);
  assert.match(status, /^ {2}3 {2}no node answers/m);
  assert.match(status, /^ {2}4 {2}permission denied.*--registry: the registry refused/m);
});

Deno.test("conf refuses reserved attributes and conflicting registration modes", () => {
  const parse = (argv: string[]) =>
    toConfOptions(parseCommandLine(CONF_SPEC, ["--registry", "http://r/", ...argv], files({})));
  assert.deepEqual(parse(["-r", "O", "Example", "--req", "OU", "x"]).req, [
    ["O", "Example"],
    ["OU", "x"],
  ]);
  usageError(() => parse(["-r", "CN", "1/16"]), /attribute CN is reserved/);
  usageError(() => parse(["--anonymous", "--email", "a@b"]), /cannot be combined/);
  usageError(() => parse(["--fingerprint", "nocolon"]), /expected ALG:HEX/);
  usageError(() => parse(["@file"]), /unexpected argument "@file"/);
});

Deno.test("status checks option combinations", () => {
  const parse = (argv: string[]) => toStatusOptions(parseCommandLine(STATUS_SPEC, argv, files({})));
  assert.equal(parse(["--wait", "connected", "--timeout", "5"]).timeout, 5);
  usageError(() => parse(["--dot"]), /--dot needs --registry/);
  usageError(() => parse(["--wait", "forever"]), /invalid choice/);
});

Deno.test("help lists every visible option of every command", () => {
  for (const spec of [NODE_SPEC, REGISTRY_SPEC, CONF_SPEC, STATUS_SPEC]) {
    const text = renderHelp(spec);
    for (const o of spec.options) {
      if (!o.hidden) assert.ok(text.includes(`--${o.long}`), `${spec.name} help lacks ${o.long}`);
    }
  }
});

Deno.test("shell splitting honours quotes, escapes and comments", () => {
  assert.deepEqual(shellSplit(`a 'b c' "d \\"e\\"" f\\ g # h`), ["a", "b c", 'd "e"', "f g"]);
  assert.deepEqual(shellSplit("x#y"), ["x#y"]);
  assert.throws(() => shellSplit('"open'), /unterminated double quote/);
});

Deno.test("relative paths on the command line are resolved against the working folder", () => {
  const o = node([
    "--config",
    "re6stnet.conf",
    "-r",
    "run",
    "-s",
    ".",
    "-l",
    "./log",
    "--dh=dh.pem",
  ], {
    "/etc/re6stnet/re6stnet.conf":
      "registry http://r/\nca ca.crt\ncert cert.crt\nkey /k/cert.key\n",
  });
  assert.equal(o.run, "/etc/re6stnet/run");
  assert.equal(o.state, "/etc/re6stnet");
  assert.equal(o.log, "/etc/re6stnet/log");
  assert.equal(o.dh, "/etc/re6stnet/dh.pem");
  assert.equal(o.ca, "/etc/re6stnet/ca.crt", "relative to the option file");
  assert.equal(o.key, "/k/cert.key");
  assert.equal(o.registry, "http://r/", "a URL is not a path");
  const s = toStatusOptions(parseCommandLine(STATUS_SPEC, ["--run", "run"], files({}, "/srv")));
  assert.equal(s.run, "/srv/run");
  const c = toConfOptions(
    parseCommandLine(CONF_SPEC, ["--registry", "http://r/", "-d", "cfg"], files({}, "/srv")),
  );
  assert.equal(c.dir, "/srv/cfg");
});

Deno.test("--metrics takes ADDR:PORT with an IP literal and is off by default", () => {
  assert.equal(node(REQUIRED).metrics, undefined);
  assert.equal(node([...REQUIRED, "--metrics", "127.0.0.1:9100"]).metrics, "127.0.0.1:9100");
  assert.equal(node([...REQUIRED, "--metrics", "[::1]:9100"]).metrics, "[::1]:9100");
  const reg = (argv: string[]) =>
    toRegistryOptions(
      parseCommandLine(REGISTRY_SPEC, ["--ca", "c", "--key", "k", ...argv], files({})),
    );
  assert.equal(reg(["--metrics", "0.0.0.0:9101"]).metrics, "0.0.0.0:9101");
  assert.equal(reg([]).metrics, undefined);
  usageError(
    () => reg(["--metrics", "localhost:9101"]),
    /^option --metrics: "localhost:9101" needs an IP address/,
  );
  assert.deepEqual(parseListenAddress("[2001:db8::1]:80", "metrics"), {
    hostname: "2001:db8::1",
    port: 80,
  });
  const bad: [string, RegExp][] = [
    ["9100", /is not an address and a port/],
    ["127.0.0.1", /is not an address and a port/],
    ["127.0.0.1:", /is not an address and a port/],
    ["127.0.0.1:99999", /has a port above 65535/],
    ["::1:9100", /has an IPv6 address without brackets/],
    ["[::g]:9100", /has an invalid IPv6 address/],
    ["300.1.1.1:9100", /needs an IP address/],
    ["example.com:9100", /names are not resolved/],
  ];
  for (const [text, why] of bad) {
    usageError(() => node([...REQUIRED, "--metrics", text]), why);
  }
  assert.equal(formatListenAddress({ hostname: "::1", port: 9 }), "[::1]:9");
  assert.match(renderHelp(NODE_SPEC), /--metrics ADDR:PORT/);
  assert.match(renderHelp(REGISTRY_SPEC), /--metrics ADDR:PORT/);
});
