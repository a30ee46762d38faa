// The overlay end to end (issue "Overlay"): a registry node and eight nodes (the lab
// topology: LAN, two routed subnets, a NAT) started with no peer configured, real registry,
// openvpn and babeld in namespaces. One network, several steps in order: all-pairs
// reachability; tunnels retired every tunnel_refresh while a ping between two far nodes keeps
// going; a node killed and restarted; a cut underlay link routed around; a certificate
// revoked at the registry; a network configuration change (Babel HMAC rotation) reaching
// every node. Figures are printed, bounds asserted.
import assert from "node:assert/strict";
import { join } from "node:path";
import type { StatusDocument } from "../../core/status/document.ts";
import { createLab, isRoot, type Lab } from "./lab.ts";
import { buildNetwork, type NetNode, type Network } from "./network.ts";
import { renderMatrix } from "./reach.ts";
import { cutBetween } from "./topology.ts";

const HELLO_S = 4;
const REFRESH_S = 20;
/** Largest ping loss accepted while tunnels are retired (see the churn step). */
const CHURN_LOSS_MAX = 0.05;

const t0 = Date.now();
const say = (line: string) =>
  console.log(`[overlay ${((Date.now() - t0) / 1000).toFixed(1)} s] ${line}`);

/** Client tunnels of a node that are up, by peer CN (from its status document). */
async function clientPeers(net: Network, n: NetNode): Promise<string[]> {
  const doc = await net.status(n);
  return (doc?.tunnels ?? [])
    .filter((t) => t.direction === "client" && t.established)
    .map((t) => t.peer).sort();
}

/** Every node's client tunnels, as "node>peer" strings. */
async function tunnelSet(net: Network, nodes: readonly NetNode[]): Promise<Set<string>> {
  const out = new Set<string>();
  for (const n of nodes) for (const p of await clientPeers(net, n)) out.add(`${n.cn}>${p}`);
  return out;
}

/** Runs `ping` for `count` packets every `intervalS`; returns [sent, received]. */
async function pingRun(
  lab: Lab,
  from: NetNode,
  to: NetNode,
  count: number,
  intervalS = 0.2,
): Promise<[number, number]> {
  const r = await lab.exec(from.name, [
    "ping",
    ...["-n", "-q", "-i", String(intervalS), "-c", String(count), "-W", "1"],
    ...["-I", from.ip!, to.ip!],
  ], { timeoutMs: (count * intervalS + 30) * 1000 });
  const m = /(\d+) packets transmitted, (\d+) received/.exec(r.stdout);
  assert.ok(m, `ping output: ${r.stdout} ${r.stderr}`);
  return [Number(m[1]), Number(m[2])];
}

/** Answers of a private registry method, called from the registry's host (authorized). */
async function registryCall(lab: Lab, net: Network, target: string): Promise<string> {
  const r = await lab.exec(net.nodes[0].name, [
    "curl",
    ...["-sS", "-f", "-m", "30", `http://127.0.0.1/${target}`],
  ]);
  assert.equal(r.code, 0, `registry ${target}: ${r.stderr}`);
  return r.stdout;
}

function logLines(n: NetNode, re: RegExp): number {
  try {
    return Deno.readTextFileSync(join(n.dir, "log", "re6stnet.log")).split("\n")
      .filter((l) => re.test(l)).length;
  } catch {
    return 0;
  }
}

Deno.test({
  name: "nodes find each other, keep reachability through tunnel churn, failures and changes",
  ignore: !isRoot,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    const lab = await createLab("ovl");
    let net: Network | null = null;
    try {
      net = await buildNetwork(lab, {
        nodes: 9,
        hello: HELLO_S,
        clientCount: 3,
        // getBootstrapPeer answers with the registry node until the registry reads Babel:
        // let every node connect to it first.
        maxClients: 12,
        tunnelRefresh: REFRESH_S,
        // n4 (subnet B) is the gateway to an "internet" host (see the gateway step).
        nodeArgs: (x) => (x.name === "n4" ? ["--gateway"] : []),
        log: say,
      });
      say(`files in ${net.workDir} (kept when R6LAB_KEEP is set)`);
      const all = net.nodes;
      const start = Date.now();
      const n = (name: string) => net!.node(name);

      await t.step("all pairs reach each other with no peer configured by hand", async () => {
        const r = await net!.waitReachable({ timeoutMs: 150_000 });
        say(
          `all-pairs reachability (9 nodes, hello ${HELLO_S} s) after ${
            ((Date.now() - start) / 1000).toFixed(1)
          } s\n${renderMatrix(r.matrix)}`,
        );
        for (const x of all) {
          assert.equal(x.exit, null, `${x.name} is still running`);
        }
      });

      await t.step(
        "tunnels keep changing while a ping between far nodes loses little",
        async () => {
          // n3 is behind the NAT, n8 in subnet B: their traffic crosses the overlay.
          const [from, to] = [n("n3"), n("n8")];
          const before = all.map((x) => logLines(x, /retired \(peer agreed\)/)).reduce((a, b) =>
            a + b
          );
          const seen = await tunnelSet(net!, all);
          const gone = new Set<string>();
          let watching = true;
          const watch = (async () => {
            while (watching) {
              const now = await tunnelSet(net!, all);
              for (const x of seen) if (!now.has(x)) gone.add(x);
              for (const x of now) seen.add(x);
              await new Promise((r) => setTimeout(r, 2000));
            }
          })();
          const periods = 3.5;
          const count = Math.round(periods * REFRESH_S / 0.2);
          const [sent, received] = await pingRun(lab, from, to, count);
          watching = false;
          await watch;
          const retired = all.map((x) => logLines(x, /retired \(peer agreed\)/))
            .reduce((a, b) => a + b) - before;
          const loss = 1 - received / sent;
          say(
            `churn: ${gone.size} client tunnels went away in ${periods} refresh periods ` +
              `(${retired} retired with the peer's agreement); ping ${from.name}→${to.name}: ` +
              `${received}/${sent} answered, loss ${(100 * loss).toFixed(1)} %`,
          );
          assert.ok(gone.size >= 3, `only ${gone.size} tunnels changed`);
          assert.ok(
            loss <= CHURN_LOSS_MAX,
            `loss ${(100 * loss).toFixed(1)} % > ${CHURN_LOSS_MAX}`,
          );
        },
      );

      await t.step("a node killed and restarted rejoins", async () => {
        // The node with the most tunnels (the registry's node aside): traffic goes through it.
        let victim = n("n5");
        let most = -1;
        for (const x of all.slice(1)) {
          const count = (await net!.status(x))?.tunnels.length ?? 0;
          if (count > most) [victim, most] = [x, count];
        }
        say(`killing ${victim.name}, which has ${most} tunnels`);
        const rest = all.filter((x) => x !== victim);
        const killed = Date.now();
        await net!.crashNode(victim);
        const r = await net!.waitReachable({ timeoutMs: 90_000, among: rest });
        say(
          `after killing ${victim.name}: the 8 others reach each other again after ${
            ((Date.now() - killed) / 1000).toFixed(1)
          } s (${r.matrix.reached}/${r.matrix.total})`,
        );
        const restarted = Date.now();
        net!.startNode(victim);
        await net!.waitReachable({ timeoutMs: 120_000 });
        say(
          `${victim.name} restarted: all pairs again after ${
            ((Date.now() - restarted) / 1000).toFixed(1)
          } s`,
        );
      });

      await t.step("a cut underlay link is routed around", async () => {
        // A client tunnel between two nodes that are not the registry.
        let pair: [NetNode, NetNode] | null = null;
        for (const a of all.slice(1)) {
          for (const cn of await clientPeers(net!, a)) {
            const b = all.find((x) => x.cn === cn);
            if (b && !b.isRegistry && b.site !== "nat") pair = [a, b];
          }
          if (pair) break;
        }
        assert.ok(pair, "some tunnel joins two nodes other than the registry");
        const [a, b] = pair;
        const mend = await cutBetween(lab, a, b);
        const cut = Date.now();
        try {
          let back = 0;
          await lab.waitFor(async () => {
            const direct = (await clientPeers(net!, a)).includes(b.cn!);
            const ok = await lab.ping(a.name, b.ip!, { count: 1, timeoutS: 1 });
            if (ok && !back) back = Date.now();
            return !direct && ok;
          }, { what: `${a.name}→${b.name} rerouted after the cut`, timeoutMs: 90_000 });
          say(
            `cut ${a.name}–${b.name}: direct tunnel gone and ${b.name} reachable through ` +
              `others after ${((Date.now() - cut) / 1000).toFixed(1)} s`,
          );
        } finally {
          await mend();
        }
      });

      await t.step("--gateway exports a default route for traffic from the network", async () => {
        // An IPv6 "internet" host behind n4; n4's own default route points to it.
        await lab.addHost("inet");
        await lab.link("n4", "inet", { v6: "fd00:99::/64" });
        const gw = n("n4");
        assert.equal(
          (await lab.exec("n4", [
            "ip",
            ...["-6", "route", "add", "default", "via", "fd00:99::2", "proto", "static"],
          ])).code,
          0,
        );
        await lab.exec("inet", ["ip", "-6", "route", "add", net!.network, "via", "fd00:99::1"]);
        const from = all.find((x) => x !== gw && x.site === "a")!;
        const added = Date.now();
        // Only traffic sourced from the network is routed to the gateway (-I our address).
        await lab.waitFor(
          async () =>
            (await lab.exec(from.name, ["ping", "-c1", "-W1", "-I", from.ip!, "fd00:99::2"]))
              .code === 0,
          { what: `${from.name} reaching the internet through ${gw.name}`, timeoutMs: 60_000 },
        );
        const routes = (await lab.exec(from.name, ["ip", "-6", "route"])).stdout;
        assert.match(routes, /default from 2001:db8:42::\/48 via fe80::\S+ dev \S+ proto babel/);
        say(
          `${from.name} reaches the internet through the gateway ${gw.name} after ${
            ((Date.now() - added) / 1000).toFixed(1)
          } s (source-specific default route)`,
        );
      });

      await t.step("a certificate revoked at the registry drops that node", async () => {
        const victim = n("n9");
        const rest = all.filter((x) => x !== victim && x.process);
        await registryCall(lab, net!, `revoke?cn_or_serial=${encodeURIComponent(victim.cn!)}`);
        const revoked = Date.now();
        await lab.waitFor(async () => {
          for (const x of rest) {
            if ((await clientPeers(net!, x)).includes(victim.cn!)) return false;
            const doc = await net!.status(x);
            if (doc?.tunnels.some((tu) => tu.peer === victim.cn)) return false;
          }
          const r = await net!.reachability([...rest, victim]);
          const i = r.names.indexOf(victim.name);
          return r.ok.every((row, j) => j === i || (!row[i] && !r.ok[i][j]));
        }, { what: `${victim.name} cut off after its revocation`, timeoutMs: 120_000 });
        say(
          `${victim.name} revoked: no tunnel and no route to it after ${
            ((Date.now() - revoked) / 1000).toFixed(1)
          } s`,
        );
        await net!.stopNode(victim);
        await net!.waitReachable({ timeoutMs: 120_000, among: rest });
      });

      await t.step("a network configuration change reaches every node", async () => {
        const running = all.filter((x) => x.process);
        const before = new Map<string, StatusDocument>();
        for (const x of running) before.set(x.name, await net!.requireStatus(x));
        const v0 = before.get("n1")!.networkConfig.version ?? 0;
        await registryCall(lab, net!, "updateHMAC");
        const changed = Date.now();
        await lab.waitFor(async () => {
          for (const x of running) {
            const doc = await net!.status(x);
            if (!doc || (doc.networkConfig.version ?? 0) <= v0) return false;
          }
          return true;
        }, { what: "every node on the new configuration", timeoutMs: 120_000 });
        // A key rotation step is applied to babeld alone: no node restarted for it.
        for (const x of running) {
          const doc = await net!.requireStatus(x);
          assert.equal(doc.startedAt, before.get(x.name)!.startedAt, `${x.name} restarted`);
        }
        say(
          `new network configuration (updateHMAC) on every node after ${
            ((Date.now() - changed) / 1000).toFixed(1)
          } s`,
        );
        await net!.waitReachable({ timeoutMs: 120_000, among: running });
        say(`all pairs reachable again ${((Date.now() - changed) / 1000).toFixed(1)} s after it`);
      });
      await t.step("babeld never spun on a flushed interface (HMAC without link-local)", () => {
        for (const x of all) {
          const size = Deno.statSync(join(x.dir, "log", "babeld.log")).size;
          assert.ok(size < 1_000_000, `${x.name}: babeld.log is ${size} bytes`);
        }
      });
    } finally {
      await net?.stop();
      await lab.cleanup();
    }
  },
});
