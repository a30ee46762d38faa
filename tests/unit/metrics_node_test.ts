import assert from "node:assert/strict";
import { nodeMetrics, programOf, RestartTally, type TapCounters } from "../../core/metrics/node.ts";
import type { StatusDocument } from "../../core/status/document.ts";
import { parseMetrics, sample } from "../helpers/prometheus.ts";
import { sampleStatus } from "../helpers/status_sample.ts";

const TAP: TapCounters = { rxBytes: 1500, txBytes: 900, rxPackets: 12, txPackets: 9 };

function source(docs: StatusDocument[], taps: Record<string, TapCounters> = { re6stnet1: TAP }) {
  let i = 0;
  return {
    status: () => docs[Math.min(i++, docs.length - 1)],
    counters: (iface: string) => Promise.resolve(taps[iface] ?? null),
  };
}

Deno.test("node metrics come from the status document and the tap counters", async () => {
  const doc = sampleStatus({
    tunnels: [
      ...sampleStatus().tunnels,
      {
        ...sampleStatus().tunnels[0],
        direction: "server",
        peer: "2/16",
        interface: "re6stnet-tcp",
        established: true,
        retiring: true,
      },
      {
        ...sampleStatus().tunnels[0],
        peer: "3/16",
        interface: "re6stnet2",
        protocol: "udp",
        established: false,
      },
    ],
  });
  const m = nodeMetrics(source([doc]));
  assert.match(m.contentType, /^text\/plain; version=0\.0\.4/);
  const f = parseMetrics(await m.scrape());
  const tunnels = (direction: string, protocol: string, state: string) =>
    sample(f, "re6st_node_tunnels", { direction, protocol, state });
  assert.equal(tunnels("client", "tcp", "established"), 1);
  assert.equal(tunnels("server", "tcp", "retiring"), 1);
  assert.equal(tunnels("client", "udp", "starting"), 1);
  assert.equal(tunnels("server", "udp", "established"), 0, "known combinations show 0");
  const rx = (iface: string) =>
    sample(f, "re6st_node_tunnel_receive_bytes_total", { interface: iface });
  assert.equal(rx("re6stnet1"), 1500);
  assert.equal(rx("re6stnet2"), undefined, "a tap that is gone has no counters");
  assert.equal(
    sample(f, "re6st_node_tunnel_transmit_packets_total", { peer: "1/16", direction: "client" }),
    9,
  );
  assert.equal(f.get("re6st_node_tunnel_receive_bytes_total")!.type, "COUNTER");
  assert.equal(sample(f, "re6st_node_babel_routes"), 5);
  assert.equal(sample(f, "re6st_node_babel_neighbours"), 1);
  assert.equal(sample(f, "re6st_node_babel_known_nodes"), 4);
  assert.equal(sample(f, "re6st_node_peers_known"), 4);
  assert.equal(sample(f, "re6st_node_registry_reachable"), 1);
  assert.equal(sample(f, "re6st_node_network_config_version"), 3);
  assert.equal(sample(f, "re6st_node_certificate_expiry_seconds"), (365 * 86400) - 3600);
  assert.equal(sample(f, "re6st_node_child_restarts_total", { program: "openvpn" }), 1);
  assert.equal(sample(f, "re6st_node_child_restarts_total", { program: "babeld" }), 0);
  assert.equal(sample(f, "re6st_node_info", { cn: "6/16", version: "0.1.0" }), 1);
  assert.equal(sample(f, "re6st_node_running"), 1);
});

Deno.test("a tunnel whose count falls to zero shows 0 instead of vanishing", async () => {
  const m = nodeMetrics(source([sampleStatus(), sampleStatus({ tunnels: [] })]));
  await m.scrape();
  const f = parseMetrics(await m.scrape());
  const want = { direction: "client", protocol: "tcp", state: "established" };
  assert.equal(sample(f, "re6st_node_tunnels", want), 0);
});

Deno.test("a node still starting has no version and no certificate expiry yet", async () => {
  const starting = sampleStatus({
    state: "starting",
    identity: { prefix: "", cn: "", ip: "", subnet: "", network: "", serial: "" },
    networkConfig: { ...sampleStatus().networkConfig, version: null },
  });
  const f = parseMetrics(await nodeMetrics(source([starting])).scrape());
  assert.equal(sample(f, "re6st_node_network_config_version"), undefined);
  assert.equal(sample(f, "re6st_node_certificate_expiry_seconds"), undefined);
  assert.equal(sample(f, "re6st_node_running"), 0);
});

Deno.test("restarts of babeld and OpenVPN only grow, whatever children come and go", () => {
  const child = (name: string, restarts: number) => ({
    name,
    pid: 1,
    state: "running" as const,
    restarts,
    lastExit: null,
  });
  const t = new RestartTally();
  t.update([child("babeld", 1), child("openvpn-client 1/16", 2)]);
  t.update([child("babeld", 3), child("openvpn-client 1/16", 2)]);
  t.update([child("babeld", 3)]); // the tunnel closed
  t.update([child("babeld", 3), child("openvpn-client 1/16", 1)]); // opened again, restarted once
  assert.deepEqual(Object.fromEntries(t.totals), { babeld: 3, openvpn: 3 });
  assert.equal(programOf("openvpn-server udp 1194"), "openvpn");
  assert.equal(programOf("babeld"), "babeld");
});
