// Scenario: nodes may use UDP and TCP tunnels, but the NAT drops UDP. The node behind it
// still joins, over TCP tunnels only, while UDP is used where it works.
import assert from "node:assert/strict";
import { isRoot } from "./lab.ts";
import { withNetwork } from "./network.ts";
import { SCENARIO } from "./scenario.ts";
import { blockNatUdp } from "./topology.ts";

Deno.test({
  name: "when the NAT drops UDP the node behind it joins over TCP tunnels",
  ignore: !isRoot,
  async fn() {
    const opts = { nodes: 4, hello: SCENARIO.hello, disableProto: ["none"], start: false };
    await withNetwork("natudp", opts, async (net) => {
      await blockNatUdp(net.lab);
      net.startAll();
      await net.waitReachable({ timeoutMs: SCENARIO.formMs, what: "the network to form" });
      const natted = net.nodes.find((n) => n.site === "nat")!;
      const doc = await net.requireStatus(natted);
      const up = doc.tunnels.filter((t) => t.established);
      assert.ok(up.length > 0, `${natted.name} has no established tunnel`);
      assert.deepEqual(
        up.filter((t) => !t.protocol.startsWith("tcp")).map((t) => `${t.peer} ${t.protocol}`),
        [],
        `${natted.name} must only have TCP tunnels`,
      );
      // UDP does work between the other nodes: the scenario is not vacuous.
      const others = await Promise.all(
        net.nodes.filter((n) => n !== natted).map((n) => net.requireStatus(n)),
      );
      const protocols = others.flatMap((d) =>
        d.tunnels.filter((t) => t.established).map((t) => t.protocol)
      );
      assert.ok(
        protocols.some((p) => p.startsWith("udp")),
        `no UDP tunnel anywhere (protocols: ${protocols.join(", ")})`,
      );
    });
  },
});
