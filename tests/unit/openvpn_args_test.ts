import assert from "node:assert/strict";
import {
  cipherArgs,
  clientArgs,
  type CommonArgs,
  serverArgs,
  serverIface,
  singleClientArgs,
  TUN_MTU_UDP4,
  TUN_MTU_UDP6,
} from "../../core/openvpn/args.ts";
import { remoteGateways } from "../../core/openvpn/gateway.ts";

// Reference command lines of VECTORS.md §16 (hooks: "/…/re6st/ovpn-client", fd 5 and 7).
const REF_UDP_SERVER = [
  "--dev-type",
  "tap",
  "--dev",
  "re6stnet-udp",
  "--persist-tun",
  "--persist-key",
  "--script-security",
  "2",
  "--up",
  "/…/re6st/ovpn-client",
  "--setenv",
  "PATH",
  "/usr/sbin:/usr/bin:/sbin:/bin",
  "--tls-server",
  "--mode",
  "server",
  "--client-connect",
  "/…/re6st/ovpn-server 5",
  "--client-disconnect",
  "/…/re6st/ovpn-server 5",
  "--dh",
  "/var/lib/re6stnet/dh.pem",
  "--max-clients",
  "20",
  "--port",
  "1194",
  "--proto",
  "udp4",
  "--link-mtu",
  "1525",
  "--mtu-disc",
  "yes",
  "--ping-exit",
  "60",
  "--ca",
  "ca.crt",
  "--cert",
  "cert.crt",
  "--key",
  "cert.key",
  "--cipher",
  "none",
  "--ncp-disable",
];

const REF_UDP_CLIENT = [
  "--dev-type",
  "tap",
  "--dev",
  "re6stnet1",
  "--persist-tun",
  "--persist-key",
  "--script-security",
  "2",
  "--up",
  "/…/re6st/ovpn-client",
  "--setenv",
  "PATH",
  "/usr/sbin:/usr/bin:/sbin:/bin",
  "--nobind",
  "--client",
  "--remote",
  "198.51.100.7",
  "1194",
  "udp4",
  "--link-mtu",
  "1432",
  "--mtu-disc",
  "yes",
  "--verify-x509-name",
  "6/16",
  "name",
  "--resolv-retry",
  "0",
  "--connect-retry-max",
  "3",
  "--tls-exit",
  "--remap-usr1",
  "SIGTERM",
  "--ping-exit",
  "60",
  "--route-up",
  "/…/re6st/ovpn-client 7",
  "--ca",
  "ca.crt",
  "--cert",
  "cert.crt",
  "--key",
  "cert.key",
  "--cipher",
  "none",
  "--ncp-disable",
];

const HOOK = "/run/re6stnet/ovpn-hook";

/**
 * The documented OpenVPN 2.6 changes (core/openvpn/args.ts): one hook program without fd
 * argument, --link-mtu replaced by --tun-mtu, 2.6 cipher options instead of --ncp-disable.
 */
function to26(ref: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < ref.length; i++) {
    const t = ref[i];
    if (t.startsWith("/…/re6st/")) out.push(HOOK);
    else if (t === "--link-mtu") {
      const m = Number(ref[++i]);
      out.push("--tun-mtu", String(m === 1525 || m === 1432 ? TUN_MTU_UDP4 : TUN_MTU_UDP6));
    } else if (t === "--cipher" && ref[i + 2] === "--ncp-disable") {
      out.push(...cipherArgs(false));
      i += 2;
    } else out.push(t);
  }
  return out;
}

const common: CommonArgs = {
  hook: HOOK,
  path: "/usr/sbin:/usr/bin:/sbin:/bin",
  encrypt: false,
  hello: 15,
  ca: "ca.crt",
  cert: "cert.crt",
  key: "cert.key",
};

Deno.test("the UDP server command line is the reference's with the documented 2.6 changes", () => {
  const got = serverArgs(common, {
    port: 1194,
    proto: "udp",
    dh: "/var/lib/re6stnet/dh.pem",
    maxClients: 20,
  });
  assert.deepEqual(got, to26(REF_UDP_SERVER));
});

Deno.test("the UDP client command line is the reference's with the documented 2.6 changes", () => {
  const got = clientArgs(common, {
    iface: "re6stnet1",
    remote: { ip: "198.51.100.7", port: 1194, proto: "udp" },
    peerCn: "6/16",
  });
  // Our addition: a UDP client tells the server when it leaves, which frees its slot at once.
  const ref = to26(REF_UDP_CLIENT);
  const at = ref.indexOf("--route-up");
  assert.deepEqual(got, [...ref.slice(0, at), "--explicit-exit-notify", "1", ...ref.slice(at)]);
  const tcp = clientArgs(common, {
    iface: "re6stnet1",
    remote: { ip: "198.51.100.7", port: 1194, proto: "tcp" },
    peerCn: "6/16",
  });
  assert.equal(tcp.includes("--explicit-exit-notify"), false, "TCP closes its connection");
});

Deno.test("unencrypted tunnels ask OpenVPN 2.6 for no cipher and no 64 MB renegotiation", () => {
  assert.deepEqual(cipherArgs(false), [
    "--cipher",
    "none",
    "--data-ciphers",
    "none",
    "--data-ciphers-fallback",
    "none",
    "--reneg-bytes",
    "0",
  ]);
  assert.deepEqual(cipherArgs(true), []);
  const enc = serverArgs({ ...common, encrypt: true }, {
    port: 1194,
    proto: "tcp",
    dh: "dh.pem",
    maxClients: 20,
  });
  for (const bad of ["--cipher", "--data-ciphers", "--reneg-bytes", "--ncp-disable"]) {
    assert.deepEqual(enc.includes(bad), false, bad);
  }
});

Deno.test("the encrypted TCP server has no MTU options and uses tcp-server", () => {
  const got = serverArgs({ ...common, encrypt: true }, {
    port: 1194,
    proto: "tcp",
    dh: "dh.pem",
    maxClients: 20,
  });
  const s = got.join(" ");
  assert.deepEqual(got[3], "re6stnet-tcp");
  assert.deepEqual(
    s.includes("--max-clients 20 --port 1194 --proto tcp-server --ping-exit 60 --ca ca.crt"),
    true,
    s,
  );
  assert.deepEqual(s.includes("mtu"), false);
});

Deno.test("IPv6 servers use udp6 / tcp6-server and their own interfaces", () => {
  const u = serverArgs(common, { port: 1195, proto: "udp6", dh: "d", maxClients: 3 }).join(" ");
  assert.deepEqual(u.includes(`--proto udp6 --tun-mtu ${TUN_MTU_UDP6} --mtu-disc yes`), true, u);
  assert.deepEqual(u.includes("--dev re6stnet-udp6 "), true);
  const t = serverArgs(common, { port: 1195, proto: "tcp6", dh: "d", maxClients: 3 }).join(" ");
  assert.deepEqual(t.includes("--proto tcp6-server --ping-exit"), true, t);
  assert.deepEqual(serverIface("tcp6"), "re6stnet-tcp6");
});

Deno.test("client remotes map address-list protocols to OpenVPN's", () => {
  const c = (proto: "udp" | "tcp" | "udp6" | "tcp6", ip: string) =>
    clientArgs(common, { iface: "re6stnet2", remote: { ip, port: 1194, proto }, peerCn: "1/16" })
      .join(" ");
  assert.deepEqual(c("tcp", "192.0.2.1").includes("--remote 192.0.2.1 1194 tcp --verify"), true);
  assert.deepEqual(
    c("udp6", "2001:db8::1").includes(
      `--remote 2001:db8::1 1194 udp6 --tun-mtu ${TUN_MTU_UDP6} --mtu-disc yes --verify`,
    ),
    true,
  );
  assert.deepEqual(
    c("tcp6", "2001:db8::1").includes("--remote 2001:db8::1 1194 tcp6 --verify"),
    true,
  );
});

Deno.test("the tap MTUs keep the UDP payload within the reference's link MTUs", () => {
  assert.deepEqual(TUN_MTU_UDP4, 1390);
  assert.deepEqual(TUN_MTU_UDP6, 1408);
});

Deno.test("-O arguments, certificates and the IPv4 payload end the role arguments in order", () => {
  const got = clientArgs(
    {
      ...common,
      extra: ["--verb", "4"],
      ipv4: { address: "10.42.1.1", netmask: "255.255.255.0" },
      logDir: "/var/log/re6stnet",
    },
    { iface: "re6stnet1", remote: { ip: "192.0.2.1", port: 1194, proto: "tcp" }, peerCn: "6/16" },
  );
  const tailWanted = [
    "--route-up",
    HOOK,
    "--verb",
    "4",
    "--ca",
    "ca.crt",
    "--cert",
    "cert.crt",
    "--key",
    "cert.key",
    "--ifconfig",
    "10.42.1.1",
    "255.255.255.0",
    "--log-append",
    "/var/log/re6stnet/re6stnet1.log",
    ...cipherArgs(false),
  ];
  assert.deepEqual(got.slice(-tailWanted.length), tailWanted);
});

Deno.test("ping-exit is four hello intervals", () => {
  const got = serverArgs({ ...common, hello: 4 }, {
    port: 1,
    proto: "tcp",
    dh: "d",
    maxClients: 1,
  });
  assert.deepEqual(got[got.indexOf("--ping-exit") + 1], "16");
});

Deno.test("single-client mode lists every remote, restarts on ping and checks no name", () => {
  const got = singleClientArgs(common, [
    { ip: "192.0.2.1", port: 1194, proto: "udp" },
    { ip: "192.0.2.2", port: 1195, proto: "udp4" },
  ]);
  const s = got.join(" ");
  assert.deepEqual(got[3], "re6stnet");
  assert.deepEqual(
    s.includes(
      "--nobind --client --remote 192.0.2.1 1194 udp4 --remote 192.0.2.2 1195 udp4 " +
        `--tun-mtu ${TUN_MTU_UDP4} --mtu-disc yes --ping-restart 60 --ca`,
    ),
    true,
    s,
  );
  for (const absent of ["--verify-x509-name", "--ping-exit", "--route-up", "--client-connect"]) {
    assert.deepEqual(s.includes(absent), false, absent);
  }
  assert.throws(() =>
    singleClientArgs(common, [
      { ip: "192.0.2.1", port: 1194, proto: "udp" },
      { ip: "2001:db8::1", port: 1194, proto: "udp6" },
    ]), /MTU\ classes/);
});

Deno.test("invalid ports, protocols, hello and client limits are refused with context", () => {
  assert.throws(
    () => serverArgs(common, { port: 0, proto: "udp", dh: "d", maxClients: 1 }),
    /port 0/,
  );
  assert.throws(
    () => serverArgs(common, { port: 1, proto: "sctp" as "udp", dh: "d", maxClients: 1 }),
    /sctp/,
  );
  assert.throws(
    () => serverArgs({ ...common, hello: 0 }, { port: 1, proto: "udp", dh: "d", maxClients: 1 }),
    /hello/,
  );
  assert.throws(
    () => serverArgs(common, { port: 1, proto: "udp", dh: "d", maxClients: 0 }),
    /max_clients/,
  );
});

Deno.test("remote gateways route IPv4 remotes round-robin and share routes per address", () => {
  const g = remoteGateways(["192.168.1.1", "192.168.1.2"]);
  assert.deepEqual(g.add("198.51.100.7"), { dst: "198.51.100.7/32", via: "192.168.1.1" });
  assert.deepEqual(g.add("198.51.100.7"), null);
  assert.deepEqual(g.add("198.51.100.8"), { dst: "198.51.100.8/32", via: "192.168.1.2" });
  assert.deepEqual(g.add("2001:db8::1"), null);
  assert.deepEqual(g.remove("198.51.100.7"), null);
  assert.deepEqual(g.remove("198.51.100.7"), { dst: "198.51.100.7/32", via: "192.168.1.1" });
  assert.deepEqual(g.removeAll(), [{ dst: "198.51.100.8/32", via: "192.168.1.2" }]);
  assert.deepEqual(remoteGateways([]).add("198.51.100.7"), null);
});
