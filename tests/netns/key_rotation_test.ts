// Babel key rotation without a split (docs/babel-key-rotation.md): on a 9-node network, the
// registry's updateHMAC runs three times (a second key accepted, the switch to it, the old
// one dropped) while all-pairs reachability is sampled every second. No node and no babeld
// restarts; in the second phase every babeld takes the new sign key in place; no pair stays
// unreachable for longer than two Babel hellos.
import assert from "node:assert/strict";
import { join } from "node:path";
import { isRoot, type Lab } from "./lab.ts";
import { type NetNode, type Network, withNetwork } from "./network.ts";
import { SCENARIO } from "./scenario.ts";

async function updateHmac(lab: Lab, net: Network): Promise<void> {
  const r = await lab.exec(net.nodes[0].name, [
    "curl",
    ...["-sS", "-f", "-m", "30", "http://127.0.0.1/updateHMAC"],
  ]);
  assert.equal(r.code, 0, `registry updateHMAC: ${r.stderr}`);
}

/** How many lines of a node's log match `re`. */
function logCount(n: NetNode, re: RegExp): number {
  try {
    return Deno.readTextFileSync(join(n.dir, "log", "re6stnet.log")).split("\n")
      .filter((l) => re.test(l)).length;
  } catch {
    return 0;
  }
}

const REKEYED = /babeld signs with the new Babel key now/;
const SCHEDULED = /New Babel key: babeld switches to it in \d+ s, with the network/;
const BABELD_RESTARTED = /babeld restarted \(pid \d+/;

/**
 * Samples all pairs every second until stopped; for each pair, the longest time it stayed
 * unanswered: from the first round it failed to the next round it answered, in seconds.
 */
function sampler(net: Network) {
  const failingSince = new Map<string, number>();
  const longest = new Map<string, number>();
  let stop = false;
  const loop = (async () => {
    while (!stop) {
      const at = Date.now();
      const r = await net.reachability();
      for (const [i, row] of r.ok.entries()) {
        for (const [j, ok] of row.entries()) {
          if (i === j) continue;
          const pair = `${r.names[i]}→${r.names[j]}`;
          const since = failingSince.get(pair);
          if (!ok) {
            if (since === undefined) failingSince.set(pair, at);
          } else if (since !== undefined) {
            failingSince.delete(pair);
            const gap = (at - since) / 1000;
            if (gap > (longest.get(pair) ?? 0)) longest.set(pair, gap);
          }
        }
      }
      const wait = 1000 - (Date.now() - at);
      if (wait > 0) await new Promise((res) => setTimeout(res, wait));
    }
    // A pair still failing at the end counts up to now.
    for (const [pair, since] of failingSince) {
      longest.set(pair, Math.max(longest.get(pair) ?? 0, (Date.now() - since) / 1000));
    }
  })();
  return {
    async stop(): Promise<[string, number][]> {
      stop = true;
      await loop;
      return [...longest].sort((a, b) => b[1] - a[1]);
    },
  };
}

Deno.test({
  name: "three updateHMAC phases on 9 nodes never leave a pair unreachable for two hellos",
  ignore: !isRoot,
  async fn() {
    const hello = SCENARIO.hello;
    // Phase 2 publishes a switch time this far ahead: every node switches then, together.
    const registryArgs = ["--key-switch-delay", "6"];
    await withNetwork("keyrot", { nodes: 9, hello, registryArgs }, async (net) => {
      await net.waitReachable({ timeoutMs: SCENARIO.formMs, what: "the network to form" });
      const startedAt = new Map<string, string>();
      for (const n of net.nodes) startedAt.set(n.name, (await net.requireStatus(n)).startedAt);
      const s = sampler(net);
      let outages: [string, number][] = [];
      try {
        for (const phase of [1, 2, 3]) {
          const v0 = (await net.requireStatus(net.nodes[0])).networkConfig.version ?? 0;
          const rekeys = new Map(net.nodes.map((n) => [n, logCount(n, REKEYED)]));
          await updateHmac(net.lab, net);
          await net.lab.waitFor(async () => {
            for (const n of net.nodes) {
              const doc = await net.status(n);
              if (!doc || (doc.networkConfig.version ?? 0) <= v0) return false;
              // Phase 2 switches the sign key: every babeld takes it in place.
              if (phase === 2 && logCount(n, REKEYED) <= rekeys.get(n)!) return false;
            }
            return true;
          }, { what: `every node on the keys of phase ${phase}`, timeoutMs: 120_000 });
          if (phase !== 2) {
            for (const n of net.nodes) assert.equal(logCount(n, REKEYED), rekeys.get(n), n.name);
          } else {
            // Each node waited for the shared switch time rather than switching on arrival.
            for (const n of net.nodes) assert.equal(logCount(n, SCHEDULED), 1, n.name);
          }
          await net.waitReachable({ timeoutMs: 60_000, what: `all pairs after phase ${phase}` });
        }
      } finally {
        outages = await s.stop();
        console.log(
          `longest unanswered gaps (s): ${
            outages.slice(0, 8).map(([p, g]) => `${p} ${g.toFixed(1)}`).join(", ") || "none"
          }`,
        );
      }
      const worst = outages[0]?.[1] ?? 0;
      assert.ok(
        worst <= 2 * hello,
        `a pair went unanswered for ${worst.toFixed(1)} s (> 2 × hello = ${2 * hello} s): ` +
          outages[0]?.[0],
      );
      for (const n of net.nodes) {
        assert.equal((await net.requireStatus(n)).startedAt, startedAt.get(n.name), n.name);
        assert.equal(logCount(n, BABELD_RESTARTED), 0, `${n.name}: babeld restarted`);
      }
      // The key really changed in the running babelds: one started afresh on the new key (a
      // crash, restarted by its node) is routed again by all the others.
      const victim = net.nodes[4];
      const babeld = (await net.requireStatus(victim)).children.find((c) => c.name === "babeld");
      assert.ok(babeld?.pid, `${victim.name} reports its babeld's pid`);
      Deno.kill(babeld.pid, "SIGKILL");
      await net.lab.waitFor(() => logCount(victim, BABELD_RESTARTED) > 0, {
        what: `${victim.name}'s babeld restarted by its node`,
        timeoutMs: 60_000,
      });
      // Its kernel keeps the dead babeld's routes: what counts is what the new one learns,
      // only from neighbours whose packets carry the key it verifies.
      const others = net.nodes.length - 1;
      await net.lab.waitFor(async () => {
        const doc = await net.status(victim);
        const pid = doc?.children.find((c) => c.name === "babeld")?.pid;
        return doc && pid !== babeld.pid && doc.babel.running && doc.babel.knownNodes >= others;
      }, {
        what: `${victim.name}'s new babeld (started on the new key) learning routes to the ` +
          `${others} other nodes`,
        timeoutMs: SCENARIO.rejoinMs,
      });
      await net.waitReachable({ timeoutMs: SCENARIO.rejoinMs, what: "all pairs at the end" });
    });
  },
});
