// Scenarios: a node is killed (all its processes, as in a crash) and a link is cut. The
// others keep or regain all-pairs reachability around the failure, and the node rejoins.
import assert from "node:assert/strict";
import { isRoot } from "./lab.ts";
import { type NetNode, tunnelPairs, withNetwork } from "./network.ts";
import { SCENARIO } from "./scenario.ts";
import { cutBetween } from "./topology.ts";

Deno.test({
  name: "a killed node is routed around and rejoins, and a cut link is routed around",
  ignore: !isRoot,
  async fn(t) {
    await withNetwork("failover", { nodes: 5, hello: SCENARIO.hello }, async (net) => {
      await net.waitReachable({ timeoutMs: SCENARIO.formMs, what: "the network to form" });

      await t.step("the others still reach each other when a node is killed", async () => {
        // Preferably a node others route through: one with several tunnels (not n1, whose
        // namespace also holds the registry, nor one behind the NAT).
        const candidates = net.nodes.filter((n) => !n.isRegistry && n.site !== "nat");
        const tunnelsOf = async (n: NetNode) =>
          (await net.requireStatus(n)).tunnels.filter((x) => x.established).length;
        const busy = await net.lab.waitFor(async () => {
          for (const n of candidates) if (await tunnelsOf(n) >= 2) return n;
          return null;
        }, { what: "a node with two tunnels", timeoutMs: 30_000, intervalMs: 1000 })
          .catch(() => null);
        const victim = busy ?? candidates[0];
        await net.crashNode(victim);
        assert.equal(victim.process, null);
        assert.equal(
          await net.lab.ping("n1", victim.ip!, { timeoutS: 1 }).catch(() => false),
          false,
        );
        await net.waitReachable({
          timeoutMs: SCENARIO.failoverMs,
          among: net.nodes.filter((n) => n !== victim),
          what: "all-pairs reachability among the survivors",
        });
      });

      await t.step("the killed node rejoins when restarted", async () => {
        const victim = net.nodes.find((n) => !n.process)!;
        net.startNode(victim);
        await net.waitReachable({
          timeoutMs: SCENARIO.rejoinMs,
          what: `${victim.name} to rejoin`,
        });
      });

      await t.step("a cut link between two tunnel ends is routed around", async () => {
        // Both ends keep other tunnels, so babel can route around the cut one.
        const pair = await net.lab.waitFor(async () => (await tunnelPairs(net, 2))[0], {
          what: "a tunnel between two nodes outside the NAT that both have another tunnel",
          timeoutMs: SCENARIO.failoverMs,
          intervalMs: 1000,
        });
        const { client: a, server: b } = pair;
        const mend = await cutBetween(net.lab, a, b);
        try {
          // The direct tunnel dies: a reaches b again only through others.
          await net.lab.waitFor(async () => {
            const doc = await net.requireStatus(a);
            return !doc.tunnels.some((x) => x.peer === b.cn && x.established);
          }, {
            what: `${a.name} to drop its tunnel to ${b.name} after the cut`,
            timeoutMs: SCENARIO.failoverMs,
            intervalMs: 1000,
          });
          await net.waitReachable({
            timeoutMs: SCENARIO.failoverMs,
            what: `all pairs, ${a.name}↔${b.name} around the cut`,
          });
        } finally {
          await mend();
        }
      });
    });
  },
});
