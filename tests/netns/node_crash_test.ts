// A machine that crashes while its node starts: every process of the node's namespace (node,
// babeld, OpenVPN) is killed with SIGKILL at several moments of start-up, the node is started
// again, runs a while, and is stopped with SIGTERM. After each cycle nothing of the node may
// remain in its namespace: no address or route of the network (babeld's own `proto babel`
// routes included, also those on a LAN interface), no tap, no process, no nftables table.
import assert from "node:assert/strict";
import { isRoot, type Lab } from "./lab.ts";
import { type NetNode, withNetwork } from "./network.ts";

/**
 * When the namespace's processes are killed, one cycle each: some milliseconds after the start,
 * or once the node reaches every other node (babeld then has routes through the LAN).
 */
const KILLS: readonly (number | "joined")[] = [2_000, 5_000, 8_000, "joined"];
/** How long the restarted node runs before SIGTERM. */
const RUN_AFTER_RESTART_MS = 6_000;

/** What is left of re6st in a host's namespace, one line per object. */
async function leftovers(lab: Lab, host: string): Promise<string[]> {
  const lines = async (argv: string[]) =>
    (await lab.exec(host, argv)).stdout.split("\n").filter((l) => l.trim());
  const ns = lab.host(host).ns;
  const pids = (await lab.exec(host, ["ip", "netns", "pids", ns])).stdout.split(/\s+/)
    .filter((p) => p);
  // A process gone meanwhile (such as the listing command itself) is not left behind.
  const names = await Promise.all(
    pids.map((p) =>
      Deno.readTextFile(`/proc/${p}/comm`).then((c) => `process ${p} ${c.trim()}`, () => null)
    ),
  );
  const processes = names.filter((n): n is string => n !== null);
  return [
    ...(await lines(["ip", "-o", "addr", "show"])).filter((l) => l.includes("2001:db8:42:")),
    ...(await lines(["ip", "-6", "route", "show", "table", "all"]))
      .filter((l) => l.includes("2001:db8:42:")).map((l) => `route ${l}`),
    ...(await lines(["ip", "-o", "link", "show"])).filter((l) => l.includes("re6stnet")),
    ...(await lines(["nft", "list", "tables"])).map((l) => `nftables ${l}`),
    ...processes,
  ];
}

Deno.test({
  name: "after a kill -9 at any moment of start-up, a restart and a SIGTERM leave nothing behind",
  ignore: !isRoot,
  async fn() {
    // The LAN nodes also run Babel on the LAN (--interface): the routes babeld installs there
    // do not go away with the node's taps.
    const lanBabel = (n: NetNode) => n.site === "lan" ? ["--interface", n.iface] : [];
    await withNetwork("crash", { nodes: 5, hello: 2, nodeArgs: lanBabel }, async (net) => {
      // n1 shares its namespace with the registry: the victim is the other LAN node.
      const victim = net.nodes.find((n) => !n.isRegistry && n.site === "lan")!;
      await net.stopNode(victim);
      for (const [i, kill] of KILLS.entries()) {
        net.startNode(victim);
        if (kill === "joined") {
          await net.waitReachable({ timeoutMs: 90_000, what: `${victim.name} to join` });
        } else await new Promise((r) => setTimeout(r, kill));
        await net.crashNode(victim);
        net.startNode(victim);
        await new Promise((r) => setTimeout(r, RUN_AFTER_RESTART_MS));
        await net.stopNode(victim);
        assert.equal(
          victim.exit?.code,
          0,
          `cycle ${i + 1}: the restarted node exits 0 on SIGTERM (${victim.exit?.signal})`,
        );
        assert.deepEqual(
          await leftovers(net.lab, victim.name),
          [],
          `cycle ${i + 1} (killed ${
            kill === "joined" ? "once joined" : `${kill} ms after start`
          }): ` +
            "what the node left behind",
        );
      }
    });
  },
});
