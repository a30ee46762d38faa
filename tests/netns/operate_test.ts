// Operating a network (issue 13): a node's metrics scraped inside its namespace, `status
// --route` and `status --follow` read from a real node, `admin versions` and `admin hmac
// rotate` on the registry host, and the restart that follows re-executing the program on disk.
import assert from "node:assert/strict";
import { join } from "node:path";
import { platformString, SOFTWARE_VERSION } from "../../core/constants.ts";
import type { RouteAnswer } from "../../core/status/route.ts";
import { parseMetrics, sample } from "../helpers/prometheus.ts";
import { isRoot } from "./lab.ts";
import { re6stArgv, withNetwork } from "./network.ts";
import { SCENARIO } from "./scenario.ts";

const METRICS = "127.0.0.1:9100";

/** The JSON lines written so far to a file (other lines ignored). */
function jsonLines(path: string): Record<string, unknown>[] {
  let text = "";
  try {
    text = Deno.readTextFileSync(path);
  } catch {
    return [];
  }
  return text.split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l));
}

Deno.test({
  name: "a node's metrics, route and changes, the network's versions, and a restart by re-exec",
  ignore: !isRoot,
  async fn() {
    /** Options of the registry, changed before it starts again. */
    const registryArgs: string[] = [];
    await withNetwork("operate", {
      nodes: 2,
      hello: SCENARIO.hello,
      start: false,
      registryArgs,
      nodeArgs: (n) => n.isRegistry ? [] : ["--metrics", METRICS],
    }, async (net) => {
      const lab = net.lab;
      const re6st = re6stArgv();
      const [n1, n2] = net.nodes;
      net.startNode(n1);
      net.startNode(n2);
      await lab.waitFor(() => net.status(n2), { what: "n2's control socket", timeoutMs: 60_000 });
      const followOut = join(net.workDir, "follow.out");
      const follower = lab.spawn(n2.name, [...re6st, "status", "--follow", "--run", n2.runDir], {
        log: followOut,
      });
      try {
        await net.waitReachable({
          timeoutMs: SCENARIO.formMs,
          what: "n1 and n2 reaching each other",
        });
        const seen = await lab.waitFor(() => {
          const lines = jsonLines(followOut);
          return lines.some((e) => e.event === "route-gained" && e.node === n1.cn) ? lines : null;
        }, { what: "a route-gained line toward n1 from status --follow", timeoutMs: 60_000 });
        assert.equal(seen[0].event, "following");
        assert.ok(seen.some((e) => e.event === "tunnel-established"), JSON.stringify(seen));

        // Metrics, scraped inside n2's namespace, agree with its status document.
        const doc = await net.requireStatus(n2);
        const scrape = await lab.exec(n2.name, ["curl", "-sS", "-f", `http://${METRICS}/metrics`]);
        assert.equal(scrape.code, 0, scrape.stderr);
        const f = parseMetrics(scrape.stdout);
        const established = f.get("re6st_node_tunnels")!.metrics
          .filter((m) => m.labels?.state === "established")
          .reduce((n, m) => n + Number(m.value), 0);
        assert.equal(established, doc.tunnels.filter((t) => t.established && !t.retiring).length);
        assert.ok(established >= 1);
        const received = f.get("re6st_node_tunnel_receive_bytes_total")!.metrics;
        assert.ok(received.some((m) => Number(m.value) > 0), "the pings crossed a tunnel");
        assert.ok(sample(f, "re6st_node_babel_routes")! >= 1);
        assert.ok(sample(f, "re6st_node_babel_neighbours")! >= 1);
        assert.equal(sample(f, "re6st_node_registry_reachable"), 1);
        assert.equal(sample(f, "re6st_node_network_config_version"), doc.networkConfig.version);
        assert.ok(sample(f, "re6st_node_certificate_expiry_seconds")! > 0);
        assert.equal(sample(f, "re6st_node_child_restarts_total", { program: "babeld" }), 0);

        // The route toward n1: through the tunnel to n1, its only neighbour.
        const r = await lab.exec(n2.name, [
          ...re6st,
          ...["status", "--run", n2.runDir, "--route", n1.ip!, "--json"],
        ]);
        assert.equal(r.code, 0, r.stderr);
        const route = JSON.parse(r.stdout) as RouteAnswer;
        assert.equal(route.route?.node, n1.cn);
        assert.equal(route.route?.peer, n1.cn);
        assert.equal(route.route?.tunnel?.peer, n1.cn);
        assert.match(route.route!.interface, /^re6stnet/);
        const text = await lab.exec(n2.name, [
          ...re6st,
          ...["status", "--run", n2.runDir, "--route", n1.ip!],
        ]);
        assert.match(text.stdout, new RegExp(`chosen: .* peer ${n1.cn}, metric \\d+`));

        // versions, from the registry host: this implementation's version and platform.
        // A node that has no peer session with the registry's node yet only gets a handshake
        // from the first request (§6.7): ask again until both answered.
        const want = [n1.cn, n2.cn].sort().map((
          cn,
        ) => [cn, `${SOFTWARE_VERSION}, ${platformString()}`]);
        let versions: [string, string | null][] = [];
        await lab.waitFor(async () => {
          const v = await lab.exec(n1.name, [...re6st, "admin", "--json", "versions"]);
          assert.equal(v.code, 0, v.stderr);
          versions = (JSON.parse(v.stdout) as { cn: string; version: string | null }[])
            .map((x): [string, string | null] => [x.cn, x.version]).sort();
          return JSON.stringify(versions) === JSON.stringify(want);
        }, { what: `admin versions answering ${JSON.stringify(want)}`, timeoutMs: 60_000 })
          .catch((e) => {
            throw new Error(`${e.message}; last answer ${JSON.stringify(versions)}`);
          });

        // A key rotation reaches every node without restarting any (babeld rekeys in place).
        const pid = n2.process!.pid;
        assert.equal(doc.pid, pid);
        const h = await lab.exec(n1.name, [...re6st, "admin", "hmac", "rotate"]);
        assert.equal(h.code, 0, h.stderr);
        const rotated = await lab.waitFor(async () => {
          const d = await net.status(n2);
          return d && (d.networkConfig.version ?? 0) > (doc.networkConfig.version ?? 0) ? d : null;
        }, { what: "n2 on the rotated configuration", timeoutMs: 120_000 });
        assert.equal(rotated.startedAt, doc.startedAt, "n2 did not restart for a key rotation");

        // A registry restarted with another client count: client nodes restart for it, and
        // n2 re-executes itself (same pid).
        await net.stopRegistry();
        registryArgs.push("--client-count", "9");
        await net.startRegistry();
        const after = await lab.waitFor(async () => {
          const d = await net.status(n2);
          const restarted = d && d.startedAt !== doc.startedAt &&
            (d.networkConfig.version ?? 0) > (rotated.networkConfig.version ?? 0);
          return restarted ? d : null;
        }, { what: "n2 restarted on the new configuration", timeoutMs: 120_000 });
        assert.equal(after.pid, pid, "the same process, re-executed");
        assert.equal(n2.process?.pid, pid, "the process the lab started still runs");
        const log = Deno.readTextFileSync(join(n2.dir, "log", "re6stnet.log"));
        assert.match(log, /Restarting \(.*\): running the program on disk again/);
        assert.match(log, /Started again \(/);
        assert.equal((await follower.status).code, 3, "the follower ends with the node's life");
        const last = jsonLines(followOut).at(-1)!;
        assert.equal(last.event, "node-stopping");
      } finally {
        await follower.stop();
      }
    });
  },
});
