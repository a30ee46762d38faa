import assert from "node:assert/strict";
import {
  type Address,
  bitsFromIp,
  bitsInNetwork,
  cnFromPrefix,
  formatAddressList,
  ipFromBits,
  ipv4Block,
  isPublicIpv4,
  networkCidr,
  networkFromSerial,
  nodeIp,
  nodeSubnet,
  normalizeIpv4Network,
  parseAddressList,
  prefixFromCn,
  serialFromNetwork,
  stripCountry,
  unmapIpv4,
} from "../../core/addressing.ts";

// VECTORS.md §2
const SERIAL_VECTORS: [bigint, number, string, string][] = [
  [
    0x120010db80042n,
    48,
    "001000000000000100001101101110000000000001000010",
    "2001:db8:42::/48",
  ],
  [
    0x120010db80043n,
    48,
    "001000000000000100001101101110000000000001000011",
    "2001:db8:43::/48",
  ],
  [0x1fd00n, 16, "1111110100000000", "fd00::/16"],
  [0x10000n, 16, "0000000000000000", "::/16"],
  [0x2n, 1, "0", "::/1"],
  [0x3n, 1, "1", "8000::/1"],
  [
    0x1fd42abcd12340000n,
    64,
    "1111110101000010101010111100110100010010001101000000000000000000",
    "fd42:abcd:1234::/64",
  ],
  [0x12a0104f8n, 32, "00101010000000010000010011111000", "2a01:4f8::/32"],
];

for (const [serial, len, bits, cidr] of SERIAL_VECTORS) {
  Deno.test(`CA serial 0x${serial.toString(16)} encodes network ${cidr}`, () => {
    const network = networkFromSerial(serial);
    assert.equal(network.length, len);
    assert.equal(network, bits);
    assert.equal(networkCidr(network), cidr);
    assert.equal(serialFromNetwork(network), serial);
  });
}

Deno.test("serial 1 gives the empty network and serials below 1 are refused", () => {
  assert.equal(networkFromSerial(1n), "");
  assert.equal(networkCidr(""), "::/0");
  assert.throws(() => networkFromSerial(0n), /positive/);
  assert.throws(() => networkFromSerial(-5n), /positive/);
});

Deno.test("a network longer than 128 bits is refused", () => {
  assert.equal(networkFromSerial(1n << 128n).length, 128);
  assert.throws(() => networkFromSerial(1n << 129n), /128/);
  assert.throws(() => serialFromNetwork("0".repeat(129)), /128/);
});

// VECTORS.md §3, network 2001:db8:42::/48
const NET = "001000000000000100001101101110000000000001000010";
const CN_VECTORS: [string, string, string, string][] = [
  ["0/16", "0000000000000000", "2001:db8:42::1", "2001:db8:42::/64"],
  ["1/16", "0000000000000001", "2001:db8:42:1::1", "2001:db8:42:1::/64"],
  ["6/16", "0000000000000110", "2001:db8:42:6::1", "2001:db8:42:6::/64"],
  ["65535/16", "1111111111111111", "2001:db8:42:ffff::1", "2001:db8:42:ffff::/64"],
  ["3/2", "11", "2001:db8:42:c000::1", "2001:db8:42:c000::/50"],
  ["1/1", "1", "2001:db8:42:8000::1", "2001:db8:42:8000::/49"],
  ["0/1", "0", "2001:db8:42::1", "2001:db8:42::/49"],
  ["5/13", "0000000000101", "2001:db8:42:28::1", "2001:db8:42:28::/61"],
  [
    "36893488147419103232/80",
    "00000000000000100000000000000000000000000000000000000000000000000000000000000000",
    "2001:db8:42:2::",
    "2001:db8:42:2::/128",
  ],
  [
    "0/80",
    "00000000000000000000000000000000000000000000000000000000000000000000000000000000",
    "2001:db8:42::",
    "2001:db8:42::/128",
  ],
];

for (const [cn, prefix, ip, subnet] of CN_VECTORS) {
  Deno.test(`CN ${cn} maps to prefix ${prefix.length} bits, node IP ${ip}, subnet ${subnet}`, () => {
    assert.equal(prefixFromCn(cn), prefix);
    assert.equal(cnFromPrefix(prefix), cn);
    assert.equal(nodeIp(NET, prefix), ip);
    assert.equal(nodeSubnet(NET, prefix), subnet);
  });
}

Deno.test("the empty prefix has CN 0/0", () => {
  assert.equal(cnFromPrefix(""), "0/0");
  assert.equal(prefixFromCn("0/0"), "");
});

Deno.test("malformed CNs and values that do not fit their length are refused, naming the CN", () => {
  for (const cn of ["", "6", "6/", "/16", "a/16", "-1/16", "6/16 ", " 6/16", "6/1.5", "1/0"]) {
    assert.throws(() => prefixFromCn(cn), (e: Error) => e.message.includes(JSON.stringify(cn)));
  }
  assert.throws(() => prefixFromCn("65536/16"), /65536\/16.*fit/);
  assert.throws(() => prefixFromCn("4/2"), /fit/);
  assert.throws(() => prefixFromCn("0/129"), /128/);
  assert.equal(prefixFromCn("06/16"), "0000000000000110");
});

Deno.test("a 128-bit prefix with a value above 2^64 round-trips through its CN", () => {
  const bits = "1" + "0".repeat(126) + "1";
  const cn = cnFromPrefix(bits);
  assert.equal(cn, `${(1n << 127n) + 1n}/128`);
  assert.equal(prefixFromCn(cn), bits);
  assert.equal(ipFromBits(bits), "8000::1");
  assert.equal(ipFromBits(bits, "1"), "8000::1");
});

Deno.test("bitsFromIp renders all 128 bits of the node IP of 6/16 (VECTORS §3)", () => {
  assert.equal(
    bitsFromIp("2001:db8:42:6::1"),
    "00100000000000010000110110111000000000000100001000000000000001100000000000000000000000000000000000000000000000000000000000000001",
  );
});

Deno.test("a source address is reduced to prefix and host bits inside the network (§6.1)", () => {
  assert.equal(bitsInNetwork(NET, "2001:db8:42:6::1"), "0000000000000110" + "0".repeat(63) + "1");
  assert.equal(bitsInNetwork(NET, "2001:db8:43:6::1"), null);
});

Deno.test("ipFromBits formats like inet_ntop (RFC 5952)", () => {
  const hex = (h: string) => BigInt("0x" + h).toString(2).padStart(128, "0");
  const cases: [string, string][] = [
    ["00000000000000000000000000000000", "::"],
    ["00000000000000000000000000000001", "::1"],
    ["20010db8000000000001000000000001", "2001:db8::1:0:0:1"],
    ["20010db8000000010000000000000001", "2001:db8:0:1::1"],
    ["20010db8000100000000000100000000", "2001:db8:1::1:0:0"],
    ["00010000000100000000000000000000", "1:0:1::"],
    ["000100020003000400050006000700ff", "1:2:3:4:5:6:7:ff"],
    ["00010002000300040005000600070000", "1:2:3:4:5:6:7:0"],
    ["0000000000000000000000000000abcd", "::abcd"],
    ["00000000000000000000ffff01020304", "::ffff:1.2.3.4"],
    ["00000000000000000000000001020304", "::1.2.3.4"],
    ["00000000000000000000fffe01020304", "::fffe:102:304"],
    ["ABCD0000000000000000000000000000".toLowerCase(), "abcd::"],
  ];
  for (const [h, text] of cases) {
    assert.equal(ipFromBits(hex(h)), text);
    assert.equal(bitsFromIp(text), hex(h));
  }
});

Deno.test("ipFromBits pads the suffix and refuses bad input", () => {
  assert.equal(ipFromBits("", "1"), "::1");
  assert.equal(ipFromBits("1", "11"), "8000::3");
  assert.equal(ipFromBits("0".repeat(127), "1"), "::1");
  assert.throws(() => ipFromBits("0".repeat(129)), /128/);
  assert.throws(() => ipFromBits("012"), /0\/1/);
  assert.throws(() => ipFromBits("0".repeat(127), "11"), /fit/);
});

Deno.test("bitsFromIp accepts what inet_pton accepts and nothing else", () => {
  for (const ok of ["::", "0::0", "1::", "ABCD::", "1:2:3:4:5:6:7::", "1::2:3:4:5:6:7"]) {
    assert.equal(bitsFromIp(ok).length, 128, ok);
  }
  assert.equal(bitsFromIp("1:2:3:4:5:6:1.2.3.4"), bitsFromIp("1:2:3:4:5:6:102:304"));
  for (
    const bad of [
      "",
      ":",
      ":::",
      "::01.2.3.4",
      "00000::1",
      "1:2:3:4:5:6:7:8:9",
      "1::2::3",
      ":1::2",
      "1:2:3:4:5:6:7:1.2.3.4",
      "::1.2.3",
      "::256.1.1.1",
      "1:2:3:4:5:6:7::8",
      "1::2:3:4:5:6:7:8",
      "::1:",
      "1.2.3.4",
      "::1.2.3.4:5",
      "1:2:3:4:5:6::1.2.3.4",
      "fe80::1%eth0",
      "[::1]",
      "1:2:3:4:5:6:7",
    ]
  ) {
    assert.throws(() => bitsFromIp(bad), /Invalid IPv6/, bad);
  }
});

// §1.5 address lists
Deno.test("an address list with and without country round-trips", () => {
  const text = "10.0.0.1,1194,udp,FR;2001:db8::1,1195,tcp6,FR";
  const list = parseAddressList(text);
  assert.deepEqual(list, [
    { ip: "10.0.0.1", port: 1194, proto: "udp", country: "FR" },
    { ip: "2001:db8::1", port: 1195, proto: "tcp6", country: "FR" },
  ]);
  assert.equal(formatAddressList(list), text);
  assert.equal(
    formatAddressList(list, { withCountry: false }),
    "10.0.0.1,1194,udp;2001:db8::1,1195,tcp6",
  );
  assert.equal(stripCountry(text), "10.0.0.1,1194,udp;2001:db8::1,1195,tcp6");
});

Deno.test("an empty address list text means no server", () => {
  assert.deepEqual(parseAddressList(""), []);
  assert.equal(formatAddressList([]), "");
});

Deno.test("bad address list entries are skipped and reported, the others kept (Q5)", () => {
  const skipped: string[] = [];
  const list = parseAddressList(
    "garbage;10.0.0.1,x,udp;10.0.0.2,1194;10.0.0.3,1194,sctp;10.0.0.4,1194,tcp,DE,extra;" +
      "10.0.0.5,70000,udp;10.0.0.6,1194,udp4;;10.0.0.7,1194,udp,",
    { onSkip: (entry, reason) => skipped.push(`${entry}: ${reason}`) },
  );
  const expected: Address[] = [
    { ip: "10.0.0.4", port: 1194, proto: "tcp", country: "DE" },
    { ip: "10.0.0.6", port: 1194, proto: "udp4" },
    { ip: "10.0.0.7", port: 1194, proto: "udp" },
  ];
  assert.deepEqual(list, expected);
  assert.equal(skipped.length, 6);
  assert.match(skipped[0], /garbage: no comma/);
  assert.match(skipped[1], /invalid port/);
});

// VECTORS.md §7
const V4_VECTORS: [string, number, number, string | null, string, string][] = [
  ["10.42.0.0/16", 8, 0, "10.42.0.1", "255.255.255.0", "10.42.0.0/24"],
  ["10.42.0.0/16", 8, 1, "10.42.1.1", "255.255.255.0", "10.42.1.0/24"],
  ["10.42.0.0/16", 8, 255, "10.42.255.1", "255.255.255.0", "10.42.255.0/24"],
  ["10.42.0.0/16", 8, 256, null, "", ""],
  ["10.42.0.0/16", 15, 5, "10.42.0.10", "255.255.255.254", "10.42.0.10/31"],
  ["10.42.0.0/16", 16, 7, "10.42.0.7", "255.255.255.255", "10.42.0.7/32"],
  ["192.168.0.0/24", 7, 3, "192.168.0.6", "255.255.255.254", "192.168.0.6/31"],
];

for (const [net, sublen, s, address, netmask, block] of V4_VECTORS) {
  Deno.test(`IPv4 payload ${net} sublen ${sublen} serial ${s} gives ${address ?? "none"}`, () => {
    const r = ipv4Block(net, sublen, s);
    if (address === null) {
      assert.equal(r, null);
    } else {
      assert.deepEqual(r, { address, netmask, block, plen: Number(block.split("/")[1]) });
    }
  });
}

Deno.test("IPv4 payload is disabled for sublen above 16 or blocks past /32", () => {
  assert.equal(ipv4Block("10.0.0.0/8", 17, 0), null);
  assert.equal(ipv4Block("10.42.0.0/24", 16, 0), null);
  assert.equal(ipv4Block("10.42.0.0/16", 0, 0)?.block, "10.42.0.0/16");
  assert.throws(() => ipv4Block("10.42.0/16", 8, 0), /Invalid/);
  assert.equal(normalizeIpv4Network("10.42.0.0/16"), "10.42.0.0/16");
  assert.throws(() => normalizeIpv4Network("10.42.0.0/33"), /Invalid/);
});

Deno.test("an IPv4-mapped address reads as plain IPv4; other addresses are unchanged", () => {
  assert.equal(unmapIpv4("::ffff:192.0.2.7"), "192.0.2.7");
  assert.equal(unmapIpv4("::FFFF:10.0.0.1"), "10.0.0.1");
  assert.equal(unmapIpv4("2001:db8::1"), "2001:db8::1");
  assert.equal(unmapIpv4("192.0.2.7"), "192.0.2.7");
});

Deno.test("public IPv4 addresses are told apart from private, shared, reserved and bad ones", () => {
  for (const ip of ["11.42.0.254", "8.8.8.8", "100.63.255.255", "100.128.0.1", "172.32.0.1"]) {
    assert.equal(isPublicIpv4(ip), true, ip);
  }
  for (
    const ip of [
      "10.1.2.3",
      "172.16.0.1",
      "192.168.1.1",
      "100.64.0.1",
      "127.0.0.1",
      "169.254.1.1",
      "0.0.0.0",
      "192.0.2.1",
      "198.51.100.1",
      "203.0.113.9",
      "224.0.0.1",
      "255.255.255.255",
      "1.2.3",
      "",
    ]
  ) assert.equal(isPublicIpv4(ip), false, ip);
});
