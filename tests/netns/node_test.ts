// Two real nodes (`deno run main.ts node`, real openvpn and babeld) and a registry, each in
// its own namespace on one LAN: node B connects to node A in --client mode; each pings the
// other's re6st address through the tunnel; babeld killed under A comes back and routing
// returns; after SIGTERM neither namespace keeps a re6st address, route, tap or process.
import assert from "node:assert/strict";
import { selfArgv } from "../../platform/self.ts";
import { type Child, createLab, isRoot, type Lab } from "./lab.ts";
import {
  enroll,
  nodeIp,
  nodeLog,
  PORT,
  processes,
  type RunningNode,
  startNode,
  stopCleanly,
  traces,
} from "./node_lab.ts";

const REGISTRY_IP = "10.0.0.1";
const LAN_IP = { a: "10.0.0.2", b: "10.0.0.3" } as const;
const REGISTRY = `http://${REGISTRY_IP}:${PORT}/`;

/** A lab with a registry (reg) and two enrolled, not yet started nodes (a, b). */
interface Network {
  lab: Lab;
  dir: string;
  ca: string;
  certs: string[];
  keys: string[];
  registry: Child;
}

async function withNetwork(name: string, fn: (n: Network) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "re6st-node-netns-" });
  const lab = await createLab(name);
  try {
    const { config, certs, keys } = await enroll(dir);
    const ca = await Deno.readTextFile(config.ca);
    for (const h of ["reg", "a", "b"]) await lab.addHost(h);
    await lab.segment("lan", ["reg", "a", "b"], {
      v4: [`${REGISTRY_IP}/24`, `${LAN_IP.a}/24`, `${LAN_IP.b}/24`],
    });
    const registry = lab.spawn("reg", [
      ...selfArgv(),
      "registry",
      "--port",
      String(PORT),
      "--ipv4-bind",
      REGISTRY_IP,
      "--ipv6-bind",
      "",
      "--db",
      config.db!,
      "--ca",
      config.ca,
      "--key",
      config.key,
      "--anonymous-prefix-length",
      "16",
      "--logfile",
      config.logfile!,
      "--run",
      config.run!,
      "--hello",
      String(config.hello),
      "-v",
      "3",
    ], { log: `${dir}/registry.stdout` });
    await lab.waitFor(async () => {
      const r = await lab.exec("reg", ["ss", "-Hltn", `sport = :${PORT}`]);
      return r.stdout.includes(String(PORT));
    }, { what: "the registry listening", timeoutMs: 20_000 });
    await fn({ lab, dir, ca, certs, keys, registry });
    registry.kill("SIGTERM");
    await registry.status;
  } finally {
    await lab.cleanup();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

Deno.test({
  name: "two nodes reach each other through a tunnel, survive a babeld crash and leave nothing",
  ignore: !isRoot,
  sanitizeResources: false,
  sanitizeOps: false,
  fn: () =>
    withNetwork("node", async ({ lab, dir, ca, certs, keys }) => {
      const nodes: RunningNode[] = [];
      // A serves (TCP 1194); B connects to A in --client mode. A's --daemon shell starts a
      // background process: it must be stopped with the shell at teardown.
      nodes.push(
        await startNode(lab, "a", dir, { ca, cert: certs[0], key: keys[0], registry: REGISTRY }, [
          "--daemon",
          "sleep 1000 >/dev/null 2>&1 & wait",
        ]),
      );
      nodes.push(
        await startNode(lab, "b", dir, { ca, cert: certs[1], key: keys[1], registry: REGISTRY }, [
          "--client",
          `${LAN_IP.a},1194,tcp`,
        ]),
      );
      const [a, b] = nodes;
      try {
        a.ip = await lab.waitFor(() => nodeIp(lab, "a"), {
          what: "A's address",
          timeoutMs: 30_000,
        });
        b.ip = await lab.waitFor(() => nodeIp(lab, "b"), {
          what: "B's address",
          timeoutMs: 30_000,
        });
        const t0 = Date.now();
        await lab.waitFor(() => lab.ping("b", a.ip), {
          what: `B pinging A (${a.ip}) through the tunnel`,
          timeoutMs: 60_000,
          intervalMs: 500,
        });
        console.log(`B reached A ${Date.now() - t0} ms after both addresses were up`);
        assert.ok(await lab.ping("a", b.ip, { count: 3 }), "A pings B back");
        // `re6st status --json` reads each node's control socket.
        for (const n of nodes) {
          const r = await lab.exec(n.side, [
            ...selfArgv(),
            "status",
            "--json",
            "--run",
            `${n.dir}/run`,
          ]);
          assert.equal(r.code, 0, `re6st status in ${n.side}: ${r.stderr}`);
          const doc = JSON.parse(r.stdout);
          assert.equal(doc.state, "running");
          assert.equal(doc.identity.ip, n.ip);
          assert.ok(doc.babel.neighbours.length >= 1, `${n.side} has a Babel neighbour`);
          assert.ok(doc.tunnels.some((t: { established: boolean }) => t.established));
          // The peer protocol runs in every mode, --client mode included (§7.1 step 7).
          const udp = await lab.exec(n.side, ["ss", "-Hlun", "sport = :326"]);
          assert.match(udp.stdout, /:326\b/, `${n.side} answers the peer protocol on UDP 326`);
        }
        // The path goes through the tunnel: A reaches B via the tap of its TCP server.
        const route = await lab.exec("a", ["ip", "-6", "route", "get", b.ip]);
        assert.match(route.stdout, /dev re6stnet-tcp/, route.stdout);

        // babeld killed under A: the node restarts it and routing comes back.
        const before = (await processes(lab, "a")).find((p) => p.name === "babeld");
        assert.ok(before, "babeld runs in A");
        Deno.kill(before.pid, "SIGKILL");
        await lab.exec("a", ["ip", "-6", "route", "flush", "proto", "babel"]);
        const cut = await lab.exec("a", ["ping", "-n", "-c", "1", "-W", "1", b.ip]);
        assert.notEqual(cut.code, 0, "no route to B while babeld is down");
        const after = await lab.waitFor(async () => {
          const p = (await processes(lab, "a")).find((x) => x.name === "babeld");
          return p && p.pid !== before.pid ? p : null;
        }, { what: "a new babeld in A", timeoutMs: 15_000 });
        assert.notEqual(after.pid, before.pid);
        const t1 = Date.now();
        await lab.waitFor(() => lab.ping("a", b.ip), {
          what: "A reaching B again after babeld restarted",
          timeoutMs: 60_000,
          intervalMs: 500,
        });
        console.log(`Routing back ${Date.now() - t1} ms after babeld was restarted`);
        const logA = await Deno.readTextFile(`${a.dir}/log/re6stnet.log`);
        assert.match(logA, /babeld \(pid \d+\) exited unexpectedly \(signal SIGKILL\)/);
        assert.match(logA, /babeld restarted/);
      } catch (e) {
        for (const n of nodes) console.error(await nodeLog(n));
        throw e;
      }
      // SIGTERM: both nodes exit 0 and leave nothing behind.
      for (const n of nodes) await stopCleanly(lab, n);
      if (Deno.env.get("RE6ST_TEST_LOGS")) { for (const n of nodes) console.log(await nodeLog(n)); }
    }),
});

Deno.test({
  name: "a node killed with -9 leaves state that its next start removes before starting",
  ignore: !isRoot,
  sanitizeResources: false,
  sanitizeOps: false,
  fn: () =>
    withNetwork("node9", async ({ lab, dir, ca, certs, keys }) => {
      const first = await startNode(lab, "a", dir, {
        ca,
        cert: certs[0],
        key: keys[0],
        registry: REGISTRY,
      }, []);
      await lab.waitFor(async () => {
        const names = (await processes(lab, "a")).map((p) => p.name);
        return names.includes("babeld") && names.includes("openvpn") &&
          (await nodeIp(lab, "a")) !== null;
      }, { what: "A running with babeld and openvpn", timeoutMs: 30_000 }).catch(async (e) => {
        console.error(await nodeLog(first), await traces(lab, "a"));
        throw e;
      });
      first.child.kill("SIGKILL");
      await first.child.status;
      const left = await traces(lab, "a");
      assert.ok(left.some((l) => l.includes("babeld")), `babeld survives: ${left}`);
      assert.ok(left.some((l) => l.includes("re6stnet-tcp")), `the tap survives: ${left}`);
      assert.ok(left.some((l) => l.includes("2001:db8:42::1/64")), `the address survives: ${left}`);

      // The operator's own objects, in the re6st network and named like a re6st tap: the
      // next start removes only what the killed node journaled, never these.
      const mine = [
        ["ip", "tuntap", "add", "dev", "re6stnet-op", "mode", "tap"],
        ["ip", "-6", "addr", "add", "2001:db8:42:ff::1/64", "dev", "re6stnet-op"],
        ["ip", "-6", "route", "add", "unreachable", "2001:db8:42:fe::/64", "proto", "static"],
      ];
      for (const argv of mine) assert.equal((await lab.exec("a", argv)).code, 0, argv.join(" "));

      const second = await startNode(lab, "a", dir, {
        ca,
        cert: certs[0],
        key: keys[0],
        registry: REGISTRY,
      }, []);
      try {
        let exited = false;
        second.child.status.then(() => exited = true);
        await lab.waitFor(async () => {
          if (exited) throw new Error("the second node exited");
          const log = await Deno.readTextFile(`${second.dir}/log/re6stnet.log`).catch(() => "");
          const since = log.lastIndexOf("left by a previous run");
          return since >= 0 && /Node 0\/16 is up/.test(log.slice(since));
        }, { what: "A up again", timeoutMs: 30_000 });
        const log = await Deno.readTextFile(`${second.dir}/log/re6stnet.log`);
        assert.match(log, /Stopping 2 process\(es\) left by a previous run: /);
        assert.match(log, /Removed \d+ leftover\(s\) of a previous run: .*tap re6stnet-tcp/);
        const names = (await processes(lab, "a")).map((p) => p.name).sort();
        // One babeld and one OpenVPN: the stale ones are gone (hooks come and go meanwhile).
        assert.deepEqual(names.filter((n) => n === "babeld" || n === "openvpn"), [
          "babeld",
          "openvpn",
        ]);
        const kept = (await traces(lab, "a")).join("\n");
        assert.match(kept, /re6stnet-op/, "the operator's tap is kept");
        assert.match(kept, /2001:db8:42:ff::1\/64/, "the operator's address is kept");
        assert.match(kept, /unreachable 2001:db8:42:fe::\/64/, "the operator's route is kept");
      } catch (e) {
        console.error(await nodeLog(second));
        throw e;
      }
      await lab.exec("a", ["ip", "-6", "route", "del", "unreachable", "2001:db8:42:fe::/64"]);
      await lab.exec("a", ["ip", "link", "del", "dev", "re6stnet-op"]);
      await stopCleanly(lab, second);
    }),
});

Deno.test({
  name: "a node started from its folder with relative paths runs, and status --run run reads it",
  ignore: !isRoot,
  sanitizeResources: false,
  sanitizeOps: false,
  fn: () =>
    withNetwork("noderel", async ({ lab, dir, ca, certs, keys }) => {
      // As an operator would: cd /etc/re6stnet && re6st node --config re6stnet.conf -r run ...
      const d = `${dir}/a`;
      await Deno.mkdir(d, { recursive: true });
      await Deno.writeTextFile(`${d}/ca.crt`, ca);
      await Deno.writeTextFile(`${d}/cert.crt`, certs[0]);
      await Deno.writeTextFile(`${d}/cert.key`, keys[0], { mode: 0o600 });
      await Deno.writeTextFile(
        `${d}/re6stnet.conf`,
        `registry http://${REGISTRY_IP}:${PORT}/\nca ca.crt\ncert cert.crt\nkey cert.key\n`,
      );
      const argv = ["node", "--config", "re6stnet.conf", "-r", "run", "-s", ".", "-l", "."];
      const child = lab.spawn("a", [...selfArgv(), ...argv], {
        cwd: d,
        log: `${d}/stdout.log`,
      });
      const n: RunningNode = { side: "a", child, dir: d, ip: "" };
      try {
        n.ip = await lab.waitFor(() => nodeIp(lab, "a"), {
          what: "A's address",
          timeoutMs: 30_000,
        });
        const inFolder = (...args: string[]) =>
          lab.exec("a", ["sh", "-c", `cd "$0" && exec "$@"`, d, ...selfArgv(), ...args]);
        const r = await inFolder("status", "--json", "--run", "run");
        assert.equal(r.code, 0, `re6st status --run run: ${r.stderr}`);
        const doc = JSON.parse(r.stdout);
        assert.equal(doc.identity.ip, n.ip);
        assert.ok(await Deno.stat(`${d}/re6stnet.log`), "the log is in the folder (-l .)");
        assert.ok(await Deno.stat(`${d}/cache.db`), "the cache is in the folder (-s .)");
      } catch (e) {
        console.error(await nodeLog(n));
        throw e;
      }
      await stopCleanly(lab, n);
    }),
});

Deno.test({
  name: "signals during start-up: SIGTERM exits 0, SIGHUP exits 255, SIGUSR1 reopens the log",
  ignore: !isRoot,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "re6st-node-netns-" });
    const lab = await createLab("nodesig");
    try {
      const { config, certs, keys } = await enroll(dir);
      const ca = await Deno.readTextFile(config.ca);
      await lab.addHost("a");
      // No registry at all: the node retries getNetworkConfig with back-off.
      const logOf = (n: RunningNode) =>
        Deno.readTextFile(`${n.dir}/log/re6stnet.log`).catch(() => "");
      const retrying = (n: RunningNode) =>
        lab.waitFor(async () => /will retry in/.test(await logOf(n)), {
          what: "the node retrying the registry",
          timeoutMs: 20_000,
        });

      const a = await startNode(lab, "a", dir, {
        ca,
        cert: certs[0],
        key: keys[0],
        registry: REGISTRY,
      }, []);
      await retrying(a);
      await stopCleanly(lab, a);
      assert.match(await logOf(a), /Stopping: SIGTERM/);

      const b = await startNode(lab, "a", `${dir}/second`, {
        ca,
        cert: certs[0],
        key: keys[0],
        registry: REGISTRY,
      }, []);
      await retrying(b);
      await Deno.rename(`${b.dir}/log/re6stnet.log`, `${b.dir}/log/re6stnet.log.1`);
      b.child.kill("SIGUSR1");
      await lab.waitFor(async () => /reopened \(SIGUSR1\)/.test(await logOf(b)), {
        what: "a new re6stnet.log after SIGUSR1",
        timeoutMs: 20_000,
      });
      b.child.kill("SIGHUP");
      assert.equal((await b.child.status).code, 255, "SIGHUP exits with status 255");
      assert.deepEqual(await traces(lab, "a"), []);

      // A missing certificate: one line on stderr, status 1, nothing started.
      await Deno.remove(`${b.dir}/cert.crt`);
      const argv = [
        ...selfArgv(),
        "node",
        "--registry",
        "http://10.0.0.1:1/",
        "--ca",
        `${b.dir}/ca.crt`,
        "--cert",
        `${b.dir}/cert.crt`,
        "--key",
        `${b.dir}/cert.key`,
        "-s",
        `${b.dir}/state`,
        "-l",
        `${b.dir}/log`,
        "-r",
        `${b.dir}/run`,
      ];
      const r = await lab.exec("a", argv);
      assert.equal(r.code, 1);
      assert.equal(
        r.stderr.trim(),
        `re6st node: Cannot load certificate "${b.dir}/cert.crt": no such file`,
      );
      assert.deepEqual(await traces(lab, "a"), []);
    } finally {
      await lab.cleanup();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});
