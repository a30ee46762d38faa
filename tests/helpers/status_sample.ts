import { STATUS_SCHEMA_VERSION, type StatusDocument } from "../../core/status/document.ts";

/** A realistic status document of a connected node, for tests. */
export function sampleStatus(over: Partial<StatusDocument> = {}): StatusDocument {
  const now = "2026-11-22T12:00:00.000Z";
  return {
    schema: STATUS_SCHEMA_VERSION,
    software: "0.1.0",
    protocol: 10,
    pid: 1234,
    state: "running",
    startedAt: "2026-11-22T11:00:00.000Z",
    now,
    identity: {
      prefix: "0000000000000110",
      cn: "6/16",
      ip: "2001:db8:42:6::1",
      subnet: "2001:db8:42:6::/64",
      network: "2001:db8:42::/48",
      serial: "7",
    },
    certificate: { notAfter: "2027-11-22T11:00:00.000Z", renewAt: "2027-10-23T11:00:00.000Z" },
    registry: {
      url: "http://re6st.example.com/",
      reachable: true,
      lastContact: now,
      lastError: null,
    },
    networkConfig: {
      version: 3,
      hello: 15,
      clientCount: 10,
      maxClients: 20,
      tunnelRefresh: 300,
      encrypt: false,
    },
    children: [
      { name: "babeld", pid: 2000, state: "running", restarts: 0, lastExit: null },
      { name: "openvpn-server tcp 1194", pid: 2001, state: "running", restarts: 1, lastExit: "x" },
    ],
    tunnels: [{
      direction: "client",
      peer: "1/16",
      interface: "re6stnet1",
      protocol: "tcp",
      remote: "192.0.2.1:1194",
      since: "2026-11-22T11:30:00.000Z",
      established: true,
      retiring: false,
      babelCost: 96,
    }],
    peers: { cacheSize: 4, connected: 2 },
    babel: {
      running: true,
      neighbours: [{ address: "fe80::1", interface: "re6stnet1", cost: 96, peer: "1/16" }],
      routes: 5,
      knownNodes: 4,
    },
    upnp: null,
    gateway: { enabled: false },
    memory: { rss: 48 << 20, heapUsed: 7 << 20, heapTotal: 9 << 20, external: 1 << 20 },
    errors: [],
    ...over,
  };
}
