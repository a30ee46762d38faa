import assert from "node:assert/strict";
import { createLab, isRoot } from "./lab.ts";
import { blockNatUdp, buildTopology, cutBetween, sitePlan } from "./topology.ts";

Deno.test("the site plan puts n1 on the LAN and covers every site with four nodes", () => {
  assert.deepEqual(sitePlan(4), ["lan", "a", "nat", "b"]);
  assert.deepEqual(sitePlan(6), ["lan", "a", "nat", "b", "lan", "a"]);
  assert.throws(() => sitePlan(0), /Invalid node count/);
});

/** True when `from` gets a TCP connection or a ping answer from `to`. */
async function pings(lab: Awaited<ReturnType<typeof createLab>>, from: string, to: string) {
  const r = await lab.exec(from, ["ping", "-n", "-q", "-c", "1", "-W", "1", to]);
  return r.code === 0;
}

Deno.test({
  name: "the lab underlay routes the subnets, hides the NAT, blocks its UDP and cuts a path",
  ignore: !isRoot,
  async fn() {
    const lab = await createLab("topo");
    try {
      const t = await buildTopology(lab, 5);
      const [n1, n2, n3, n4, n5] = t.nodes;
      assert.deepEqual(t.nodes.map((n) => n.site), ["lan", "a", "nat", "b", "lan"]);
      assert.equal(t.registryAddress, "10.42.0.1");
      // Public sites reach each other; the NATed node reaches out but nobody reaches it.
      for (const [a, b] of [[n1, n2], [n2, n4], [n4, n5], [n3, n1], [n3, n2], [n3, n4]]) {
        assert.equal(await pings(lab, a.name, b.underlay), true, `${a.name} → ${b.name}`);
      }
      assert.equal(await pings(lab, n2.name, n3.underlay), false, "n2 must not reach n3");

      // The registry sees the NATed node as the NAT router's LAN address.
      const server = lab.spawn(n1.name, ["iperf3", "-s", "-1", "-B", n1.underlay]);
      await lab.waitFor(
        async () => (await lab.exec(n1.name, ["ss", "-ltn"])).stdout.includes(":5201"),
        { what: "iperf3 listening" },
      );
      const tcp = await lab.exec(n3.name, ["iperf3", "-c", n1.underlay, "-t", "1", "-J"]);
      await server.status;
      assert.equal(tcp.code, 0, tcp.stderr);
      assert.match(tcp.stdout, /"remote_host":\s*"10\.42\.0\.1"/);

      // UDP out of the NAT is dropped once blocked, TCP still passes.
      await blockNatUdp(lab);
      const udp = await lab.exec(n3.name, [
        "bash",
        "-c",
        `exec 3<>/dev/udp/${n1.underlay}/9; echo x >&3`,
      ]);
      assert.equal(udp.code, 0); // sending works locally; the router counts the drop
      const counters = await lab.exec("rn", ["nft", "list", "table", "inet", "r6lab_noudp"]);
      assert.match(counters.stdout, /udp counter packets [1-9]\d* bytes \d+ drop/);
      assert.equal(await pings(lab, n3.name, n1.underlay), true, "ICMP still passes the NAT");

      // A cut path between two nodes, then mended.
      const mend = await cutBetween(lab, n2, n4);
      assert.equal(await pings(lab, n2.name, n4.underlay), false);
      assert.equal(await pings(lab, n2.name, n1.underlay), true);
      await mend();
      assert.equal(await pings(lab, n2.name, n4.underlay), true);
    } finally {
      await lab.cleanup();
    }
  },
});
