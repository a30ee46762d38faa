import assert from "node:assert/strict";
import { drainArgs, drainRuleset, undrainArgs } from "../../platform/nft_drain.ts";

Deno.test("draining drops Babel (UDP 6696) both ways on the listed taps only", () => {
  const text = drainRuleset();
  assert.match(text, /iifname @taps udp dport 6696 drop/);
  assert.match(text, /oifname @taps udp dport 6696 drop/);
  assert.deepEqual(drainArgs("re6stnet2"), [
    "add",
    "element",
    "inet",
    "re6st_drain",
    "taps",
    "{ re6stnet2 }",
  ]);
  assert.equal(undrainArgs("re6stnet2")[0], "delete");
  assert.throws(() => drainArgs("x; flush ruleset"), /Invalid interface name/);
});
