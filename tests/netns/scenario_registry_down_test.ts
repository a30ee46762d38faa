// Scenario: the registry goes down once the network has formed. The overlay does not need it:
// every pair keeps reaching each other, and a node restarted meanwhile rejoins from its cache.
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
