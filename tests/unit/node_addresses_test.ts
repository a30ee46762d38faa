import assert from "node:assert/strict";
import { parseAddressList } from "../../core/addressing.ts";
import {
  advertisable,
  createOwnAddresses,
  isPrivateAddress,
  machineAddresses,
  upnpUse,
} from "../../core/node/addresses.ts";
import { NET } from "../helpers/tunnel_fakes.ts";

const servers = [
  { port: 1194, proto: "tcp" as const },
  { port: 1195, proto: "udp" as const },
  { port: 1194, proto: "tcp6" as const },
];

Deno.test("explicit --ip addresses go with every server of their family, IPv4 first", () => {
  const own = createOwnAddresses({ ips: ["2001:db8::5", "192.0.2.1"], servers, network: NET });
  assert.equal(
    own.text(),
    "2001:db8::5,1194,tcp6;192.0.2.1,1194,tcp;192.0.2.1,1195,udp",
  );
  assert.equal(own.learning(4), false);
  assert.equal(own.learn("198.51.100.1"), false, "explicit: nothing learned");
});

Deno.test("without --ip the machine's addresses are advertised until a server tells ours", () => {
  const own = createOwnAddresses({
    ips: [],
    servers: servers.slice(0, 1),
    network: NET,
    local: ["10.42.0.5", "127.0.0.1", "2001:db8:42:5::1"],
  });
  assert.equal(own.text(), "10.42.0.5,1194,tcp");
  assert.equal(own.learn("203.0.113.9"), true);
  assert.equal(own.text(), "203.0.113.9,1194,tcp");
  assert.equal(own.learn("203.0.113.9"), false, "unchanged");
});

Deno.test("a saved list wins over interface addresses and keeps its countries", () => {
  const own = createOwnAddresses({
    ips: ["any"],
    servers: servers.slice(0, 1),
    network: NET,
    cached: "203.0.113.9,1194,tcp,FR",
    local: ["10.42.0.5"],
    withCountry: true,
  });
  assert.equal(own.text(), "203.0.113.9,1194,tcp,FR");
  assert.equal(own.country(4), "FR");
  assert.equal(own.setCountry(4, "DE"), true);
  assert.equal(own.text(), "203.0.113.9,1194,tcp,DE");
  assert.deepEqual(own.firstIps(), [{ family: 4, ip: "203.0.113.9" }]);
});

Deno.test("--country is every family's country", () => {
  const own = createOwnAddresses({
    ips: ["192.0.2.1"],
    servers,
    network: NET,
    country: "JP",
    withCountry: true,
  });
  assert.equal(own.country(6), "JP");
  assert.ok(own.text().startsWith("192.0.2.1,1194,tcp,JP;"));
});

Deno.test("re6st, loopback and link-local addresses are never advertised", () => {
  assert.equal(advertisable("10.1.2.3", NET), true);
  assert.equal(advertisable("127.0.0.1", NET), false);
  assert.equal(advertisable("fe80::1", NET), false);
  assert.equal(advertisable("2001:db8:42:6::1", NET), false);
  assert.equal(advertisable("2001:db8:43::1", NET), true);
  assert.equal(advertisable("any", NET), false);
});

Deno.test("machine addresses come from `ip -j addr`, without lo and re6st taps", () => {
  const json = JSON.stringify([
    { ifname: "lo", addr_info: [{ local: "127.0.0.1", scope: "host" }] },
    {
      ifname: "eth0",
      addr_info: [
        { local: "10.42.0.5", prefixlen: 24, scope: "global" },
        { local: "fe80::1", prefixlen: 64, scope: "link" },
      ],
    },
    { ifname: "re6stnet1", addr_info: [{ local: "10.9.0.1", scope: "global" }] },
  ]);
  assert.deepEqual(machineAddresses(json), ["10.42.0.5/24"]);
  assert.deepEqual(machineAddresses("not json"), []);
});

Deno.test("once a server told us our address, private ones go only to peers of our networks", () => {
  const own = createOwnAddresses({
    ips: [],
    servers: [servers[0], servers[2]],
    network: NET,
    local: ["192.168.1.5/24", "fd00:1::5/64", "2001:db8:99::5/64"],
  });
  // Before: everything, so that a fresh node on a LAN is found.
  assert.equal(
    own.text(),
    "192.168.1.5,1194,tcp;fd00:1::5,1194,tcp6;2001:db8:99::5,1194,tcp6",
  );
  assert.equal(own.learn("203.0.113.9"), true);
  // Peers elsewhere: the address the server saw and the public IPv6 one, no private one.
  assert.equal(own.text(), "203.0.113.9,1194,tcp;2001:db8:99::5,1194,tcp6");
  assert.equal(
    own.text(parseAddressList("198.51.100.4,1194,tcp")),
    "203.0.113.9,1194,tcp;2001:db8:99::5,1194,tcp6",
  );
  // A peer of our LAN also gets our LAN addresses, after the external one.
  assert.equal(
    own.text(parseAddressList("192.168.1.9,1194,tcp")),
    "203.0.113.9,1194,tcp;192.168.1.5,1194,tcp;fd00:1::5,1194,tcp6;2001:db8:99::5,1194,tcp6",
  );
  // A private address a server confirmed (a NAT inside a larger private network) is kept.
  assert.equal(own.learn("10.42.0.253"), true);
  assert.equal(own.text(), "10.42.0.253,1194,tcp;2001:db8:99::5,1194,tcp6");
});

Deno.test("private means RFC 1918, shared (CGNAT) or unique local", () => {
  for (
    const ip of ["10.1.2.3", "172.16.0.1", "172.31.255.1", "192.168.0.1", "100.64.0.1", "fd12::1"]
  ) {
    assert.equal(isPrivateAddress(ip), true, ip);
  }
  for (const ip of ["172.32.0.1", "100.128.0.1", "192.0.2.1", "2001:db8::1", "11.42.0.1"]) {
    assert.equal(isPrivateAddress(ip), false, ip);
  }
});

Deno.test("UPnP is used with --ip upnp, or without any IPv4 --ip, never in --client mode", () => {
  assert.equal(upnpUse([], false), "default");
  assert.equal(upnpUse(["2001:db8::1"], false), "default");
  assert.equal(upnpUse(["upnp"], false), "explicit");
  assert.equal(upnpUse(["any"], false), null);
  assert.equal(upnpUse(["192.0.2.1"], false), null);
  assert.equal(upnpUse([], true), null);
});

Deno.test("UPnP mappings replace the IPv4 entries; --ip upnp without one advertises no IPv4", () => {
  const mapped = [{ ip: "11.42.0.254", port: 33000, proto: "tcp" as const }];
  const own = createOwnAddresses({
    ips: [],
    servers: [servers[0]],
    network: NET,
    local: ["10.77.0.2/24"],
  });
  own.setMapped(mapped);
  assert.equal(own.text(), "11.42.0.254,33000,tcp");
  assert.equal(own.learn("11.42.0.254"), false, "UPnP, not learning, gives IPv4");
  assert.equal(own.learning(4), false);
  own.setMapped(null);
  assert.equal(own.text(), "10.77.0.2,1194,tcp", "no gateway any more: learning again");
  const only = createOwnAddresses({
    ips: ["upnp"],
    servers: [servers[0]],
    network: NET,
    local: ["10.77.0.2/24"],
  });
  assert.equal(only.text(), "");
  only.setMapped(mapped);
  assert.equal(only.text(), "11.42.0.254,33000,tcp");
});
