// The overlay simulation (bench/simulate.ts) on 30 nodes: the project's own tunnel decisions
// must give a connected tunnel graph that respects the limits, before and after a loss.
import assert from "node:assert/strict";
import { parseArgs, trialOptions } from "../../bench/simulate.ts";
import { seeded } from "../../bench/sim/rng.ts";
import { runTrial } from "../../bench/sim/trial.ts";
import { World } from "../../bench/sim/world.ts";

const PERIOD_S = 300;

function world(seed: number, nat: number, fullTicks = false): World {
  return new World({
    nodes: 30,
    natShare: nat,
    clientCount: 4,
    maxClients: 6,
    tunnelRefreshS: PERIOD_S,
    helloS: 15,
    refuseDelayS: 5,
    detectS: 60,
    startSpreadS: 5,
    fullTicks,
    random: seeded(seed),
  });
}

/** Every structural fact the tunnel graph of `w` must hold, as a list of what is wrong. */
function violations(w: World): string[] {
  const out: string[] = [];
  const view = w.view();
  if (view.sizes.length !== 1) out.push(`${view.sizes.length} components: ${view.sizes}`);
  for (const v of w.live()) {
    const n = w.nodes[v];
    const { out: o, in: i } = w.degree(v);
    if (o > w.settings.clientCount) out.push(`${n.cn}: ${o} client tunnels`);
    if (i > 6) out.push(`${n.cn}: ${i} clients served, above max_clients`);
    if (n.nat && i > 0) out.push(`${n.cn} is behind a NAT but serves ${i} clients`);
    // Every established client tunnel is in the server's book, and the reverse.
    for (const t of n.manager.clients.list()) {
      const srv = w.nodes.find((x) => x.prefix === t.prefix)!;
      if (t.established && srv.alive && !srv.served.has(n.prefix)) {
        out.push(`${n.cn} → ${srv.cn} is up but ${srv.cn} does not serve it`);
      }
    }
    for (const p of n.served.prefixes()) {
      const c = w.nodes.find((x) => x.prefix === p)!;
      if (c.alive && !c.manager.clients.has(n.prefix)) {
        out.push(`${n.cn} serves ${c.cn}, no tunnel`);
      }
    }
  }
  return out;
}

for (const nat of [0, 0.3]) {
  Deno.test(`30 simulated nodes (NAT ${nat * 100}%) form one graph within the limits, and heal after losing 5`, async () => {
    const w = world(7, nat);
    await w.runUntil(2 * PERIOD_S * 1000);
    assert.deepEqual(violations(w), []);
    assert.equal(w.counters.errors, 0, w.counters.messages.join("\n"));
    const tunnels = w.live().reduce((s, v) => s + w.degree(v).out, 0);
    assert.ok(tunnels >= 30, `${tunnels} tunnels for 30 nodes`);
    assert.ok(w.counters.closed > 0, "working tunnels were retired and replaced");
    const victims = w.live().filter((v) => v !== w.registry).slice(0, 5);
    w.kill(victims);
    await w.runUntil(3 * PERIOD_S * 1000);
    assert.deepEqual(violations(w), []);
    assert.equal(w.live().length, 25);
    for (const v of w.live()) {
      for (const t of w.nodes[v].manager.clients.list()) {
        assert.ok(!victims.some((x) => w.nodes[x].prefix === t.prefix), "a tunnel to a dead node");
      }
    }
  });
}

Deno.test("skipping the ticks that change nothing leaves the same kind of graph", async () => {
  const w = world(3, 0.3, true);
  await w.runUntil(PERIOD_S * 1000);
  assert.deepEqual(violations(w), []);
  assert.equal(w.counters.skipped, 0, "--full-ticks runs every tick");
});

Deno.test("a trial measures hops, limits and losses, and a seed replays it", async () => {
  const a = parseArgs([
    "--sizes",
    "30",
    "--nat",
    "30",
    "--form-periods",
    "1",
    "--heal-periods",
    "1",
  ]);
  const o = { ...trialOptions(a, 30, 30, 0), clientCount: 4, maxClients: 6 };
  const r = await runTrial(o);
  assert.equal(r.formation.connected, true);
  assert.ok(r.formation.hops.avg >= 1 && r.formation.hops.diameter >= r.formation.hops.p99);
  assert.equal(r.formation.degrees.natIncoming, 0);
  assert.equal(r.formation.degrees.aboveMaxClients, 0);
  assert.deepEqual(r.losses.map((l) => l.killed), [3, 8]);
  assert.ok(r.losses.every((l) => l.connected));
  const again = await runTrial(o);
  assert.deepEqual(again.formation.samples, r.formation.samples);
  assert.deepEqual(again.counters, r.counters);
});

Deno.test("bad simulate options are refused with the option's name", () => {
  assert.throws(() => parseArgs(["--sizes", "ten"]), /--sizes/);
  assert.throws(() => parseArgs(["--trials", "0"]), /--trials/);
  assert.throws(() => parseArgs(["--bogus"]), /unknown option --bogus/);
});
