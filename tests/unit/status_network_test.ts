import assert from "node:assert/strict";
import { networkView, renderDot, renderNetwork } from "../../core/status/network.ts";

const versions = {
  "0000000000000000": "0.1.0, Linux-x86_64",
  "0000000000000001": "0.9, Linux",
  "0000000000000010": null,
};
const topology = { "": ["0/16", "1/16"], "1/16": ["0/16"], "0/16": ["2/16"] };

Deno.test("the registry's answers become one node list sorted by prefix", () => {
  const view = networkView("http://r/", versions, topology);
  assert.deepEqual(view.nodes.map((n) => n.cn), ["0/16", "1/16", "2/16"]);
  assert.deepEqual(view.nodes[1], {
    cn: "1/16",
    version: "0.9, Linux",
    answered: true,
    clientOf: ["0/16"],
  });
  assert.equal(view.nodes[2].answered, false);
});

Deno.test("the topology renders as a table and as a Graphviz digraph", () => {
  const view = networkView("http://r/", versions, topology);
  assert.match(renderNetwork(view), /1\/16\s+yes\s+0\.9, Linux\s+0\/16/);
  const dot = renderDot(view);
  assert.match(dot, /^digraph re6st \{/);
  assert.match(dot, /"1\/16" -> "0\/16";/);
  assert.match(dot, /"2\/16" \[label="2\/16", style=dashed\];/);
});
