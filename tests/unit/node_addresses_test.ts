import assert from "node:assert/strict";
import { advertisable, createOwnAddresses, machineAddresses } from "../../core/node/addresses.ts";
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
        { local: "10.42.0.5", scope: "global" },
        { local: "fe80::1", scope: "link" },
      ],
    },
    { ifname: "re6stnet1", addr_info: [{ local: "10.9.0.1", scope: "global" }] },
  ]);
  assert.deepEqual(machineAddresses(json), ["10.42.0.5"]);
  assert.deepEqual(machineAddresses("not json"), []);
});
