// Scenarios: the registry goes down once the network has formed. The overlay does not need it:
// every pair keeps reaching each other, and a node restarted meanwhile rejoins from its cache.
// The registry's host crashes (its node and the registry): the others reconnect from their
// caches, which hold every peer's address, not only those they had tunnels with.
import assert from "node:assert/strict";
import { isRoot } from "./lab.ts";
import { withNetwork } from "./network.ts";
import { SCENARIO } from "./scenario.ts";

Deno.test({
  name:
    "with the registry down the network keeps working and a restarted node rejoins from its cache",
  ignore: !isRoot,
  async fn() {
    await withNetwork("regdown", { nodes: 4, hello: SCENARIO.hello }, async (net) => {
      await net.waitReachable({
        timeoutMs: SCENARIO.formMs,
        what: "all-pairs reachability before the registry stops",
      });
      await net.stopRegistry();
      const n4 = net.node("n4");
      const probe = `exec 3<>/dev/tcp/${net.topology.registryAddress}/80`;
      assert.notEqual(
        (await net.lab.exec(n4.name, ["bash", "-c", probe])).code,
        0,
        "the registry must be unreachable for this scenario",
      );

      // For three hello intervals, every check finds every pair reachable.
      const until = Date.now() + 3 * SCENARIO.hello * 1000;
      let rounds = 0;
      while (Date.now() < until || rounds < 2) {
        const r = await net.reachability();
        rounds++;
        assert.equal(r.full, true, `pairs lost with the registry down:\n${await net.explain(r)}`);
        await new Promise((res) => setTimeout(res, 1000));
      }

      // A node restarted while the registry is down rejoins from its cache.
      await net.stopNode(n4);
      assert.equal(n4.exit?.code, 0, "re6st node must stop cleanly on SIGTERM");
      net.startNode(n4);
      await net.waitReachable({
        timeoutMs: SCENARIO.rejoinMs,
        what: "n4 rejoining from its cache with the registry down",
      });
      assert.equal(net.registry, null);
    });
  },
});

Deno.test({
  name: "every node caches its peers' addresses, so that when the registry's host crashes " +
    "the others reach each other from their caches",
  ignore: !isRoot,
  async fn() {
    await withNetwork("reghost", { nodes: 5, hello: SCENARIO.hello }, async (net) => {
      await net.waitReachable({ timeoutMs: SCENARIO.formMs, what: "5 nodes to form one network" });
      // 4 peers is less than 2 × client_count: each node asks them all, tunnel or not.
      await net.lab.waitFor(async () => {
        const docs = await Promise.all(net.nodes.map((n) => net.status(n)));
        return docs.every((d) => d !== null && d.peers.cacheSize >= net.nodes.length - 1);
      }, { timeoutMs: SCENARIO.formMs, what: "every node caching the addresses of the 4 others" });
      const hub = net.nodes.find((n) => n.isRegistry)!;
      await net.crashNode(hub);
      await net.waitReachable({
        timeoutMs: SCENARIO.failoverMs,
        among: net.nodes.filter((n) => n !== hub),
        what: `the 4 others after the crash of ${hub.name}, the registry's host`,
      });
    });
  },
});
