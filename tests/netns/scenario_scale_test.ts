// Scenario at a larger scale: 16 real nodes on the lab topology (a quarter behind the NAT)
// form one network; four of them (never the registry's host) are killed at once, and the
// twelve others reach each other again.
import assert from "node:assert/strict";
import { isRoot } from "./lab.ts";
import { withNetwork } from "./network.ts";
import { SCENARIO } from "./scenario.ts";

Deno.test({
  name: "16 nodes form one network, and the survivors of 4 nodes killed at once reach each other",
  ignore: !isRoot,
  async fn() {
    await withNetwork("scale16", { nodes: 16, hello: SCENARIO.hello }, async (net) => {
      await net.waitReachable({ timeoutMs: SCENARIO.formMs, what: "16 nodes to form one network" });
      const victims = net.nodes.filter((n) => !n.isRegistry).sort(() => Math.random() - 0.5)
        .slice(0, 4);
      await Promise.all(victims.map((v) => net.crashNode(v)));
      assert.ok(victims.every((v) => v.process === null));
      const survivors = net.nodes.filter((n) => !victims.includes(n));
      await net.waitReachable({
        timeoutMs: SCENARIO.failoverMs,
        among: survivors,
        what: `all pairs of the 12 survivors after killing ${victims.map((v) => v.name)}`,
      });
    });
  },
});
