// Two nodes and their registry, started the way an operator does (`re6st registry`, `re6st
// conf --anonymous`, `re6st node --config`, or $RE6ST_BIN: scripts/smoke runs this file
// against a built binary) and confined as their systemd units confine them (confine.ts),
// reach each other. Then logrotate, with packaging/logrotate pointed at the lab's folders,
// rotates every log, and each daemon writes to its new file: the node and the registry reopen
// theirs (SIGUSR1), babeld too (SIGUSR2), OpenVPN's are copied and truncated; a `tail -f`
// reading a log is left alone.
import assert from "node:assert/strict";
import { join } from "node:path";
import { createRunner } from "../../platform/runner.ts";
import { confinedArgv, confinementOf, readUnit, unitCapabilities } from "./confine.ts";
import { type Child, isRoot, type Lab } from "./lab.ts";
import { type NetNode, type Network, withNetwork } from "./network.ts";
import { SCENARIO } from "./scenario.ts";

const LOGROTATE_FILE = new URL("../../packaging/logrotate", import.meta.url);
const LOG_DIR = "/var/log/re6stnet";

/** Pids of the processes named `name` (comm) in a lab host's namespace. */
async function pidsOf(lab: Lab, host: string, name: string): Promise<number[]> {
  const r = await createRunner().run(["ip", "netns", "pids", lab.host(host).ns]);
  const out = [];
  for (const pid of r.stdout.split(/\s+/).filter((p) => p)) {
    const comm = await Deno.readTextFile(`/proc/${pid}/comm`).catch(() => "");
    if (comm.trim() === name) out.push(Number(pid));
  }
  return out;
}

const read = (path: string) => Deno.readTextFile(path).catch(() => "");

/** The OpenVPN logs (`--ovpnlog`) of a log folder: `re6stnet-<proto>.log`, `re6stnet<N>.log`. */
async function openvpnLogs(dir: string): Promise<string[]> {
  const out = [];
  for await (const e of Deno.readDir(dir)) {
    if (/^re6stnet(-[a-z0-9]+|\d+)\.log$/.test(e.name)) out.push(join(dir, e.name));
  }
  return out.sort();
}

/** Rotates every log of the network with packaging/logrotate, as `logrotate -f` would. */
async function rotate(net: Network, workDir: string): Promise<void> {
  const template = await Deno.readTextFile(LOGROTATE_FILE);
  assert.ok(template.includes(LOG_DIR), `packaging/logrotate names ${LOG_DIR}`);
  const folders = [...net.nodes.map((n) => join(n.dir, "log")), join(net.workDir, "registry")];
  const configs = [];
  for (const [i, dir] of folders.entries()) {
    const path = join(workDir, `logrotate-${i}.conf`);
    await Deno.writeTextFile(path, template.replaceAll(LOG_DIR, dir));
    configs.push(path);
  }
  const state = join(workDir, "logrotate.state");
  const r = await new Deno.Command("logrotate", {
    args: ["-f", "-s", state, ...configs],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(r.stderr) + new TextDecoder().decode(r.stdout);
  assert.equal(r.code, 0, `logrotate -f failed:\n${text}`);
}

async function checkReopened(lab: Lab, path: string, what: string): Promise<void> {
  await lab.waitFor(async () => /reopened \(SIGUSR1\)/.test(await read(path)), {
    what: `${what} writing "reopened (SIGUSR1)" to its new ${path}`,
    timeoutMs: 30_000,
  });
  assert.match(await read(`${path}.1`), /\S/, `${path}.1 keeps the lines before the rotation`);
}

Deno.test({
  name: "two nodes reach each other, and logrotate makes every daemon write to a new log file",
  ignore: !isRoot,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const workDir = await Deno.makeTempDir({ prefix: "re6st-rotate-" });
    const caps = {
      node: unitCapabilities(await readUnit("re6st-node.service")),
      registry: unitCapabilities(await readUnit("re6st-registry.service")),
    };
    const labDir = join(workDir, "lab");
    try {
      await withNetwork("twonodes", {
        nodes: 2,
        hello: SCENARIO.hello,
        nodeArgs: () => ["--ovpnlog"],
        workDir: labDir,
        wrap: (command, argv) => confinedArgv(argv, caps[command], labDir),
      }, async (net) => {
        const { lab } = net;
        await net.waitReachable({
          timeoutMs: SCENARIO.formMs,
          what: "n1 and n2 reaching each other",
        });

        for (const n of net.nodes) {
          const c = await confinementOf(n.process!.pid);
          assert.deepEqual(c.caps, [...caps.node].sort(), `capabilities of ${n.name}'s node`);
          assert.ok(c.rootReadOnly, `${n.name}'s node sees / read-only`);
        }

        const logOf = (n: NetNode, file: string) => join(n.dir, "log", file);
        const n1 = net.nodes[0];
        // A reader of a log: only writers get a signal (SIGUSR1 would kill `tail`).
        const reader: Child = lab.spawn(n1.name, ["tail", "-f", logOf(n1, "re6stnet.log")]);
        let readerEnded = false;
        reader.status.then(() => readerEnded = true);
        const ovpnBefore = (await Promise.all(
          net.nodes.map((n) => openvpnLogs(join(n.dir, "log"))),
        )).flat();
        assert.ok(ovpnBefore.length > 0, "--ovpnlog: the nodes write OpenVPN log files");

        await rotate(net, workDir);

        for (const n of net.nodes) {
          await checkReopened(lab, logOf(n, "re6stnet.log"), `${n.name}'s node`);
        }
        await checkReopened(lab, join(net.workDir, "registry", "registry.log"), "the registry");
        // babeld reopens its log on SIGUSR2 (sent by the rotation); SIGUSR1 makes it dump its
        // tables there now, so that the new file receives lines.
        for (const n of net.nodes) {
          const path = logOf(n, "babeld.log");
          assert.ok(await Deno.stat(`${path}.1`).then(() => true, () => false), `${path}.1`);
          const [babeld] = await pidsOf(lab, n.name, "babeld");
          assert.ok(babeld, `babeld runs in ${n.name}`);
          Deno.kill(babeld, "SIGUSR1");
          await lab.waitFor(async () => /My id /.test(await read(path)), {
            what: `babeld of ${n.name} dumping its tables into its new ${path}`,
            timeoutMs: 30_000,
          });
        }
        // OpenVPN keeps its --log-append file for its whole life: copied, then truncated.
        // SIGUSR2 makes it write its statistics (servers: their client list) there now.
        for (const n of net.nodes) {
          for (const pid of await pidsOf(lab, n.name, "openvpn")) Deno.kill(pid, "SIGUSR2");
        }
        for (const path of ovpnBefore) {
          assert.match(await read(`${path}.1`), /\S/, `${path}.1 keeps the lines before`);
          await lab.waitFor(async () => /STATISTICS|CLIENT LIST/.test(await read(path)), {
            what: `OpenVPN writing its statistics (or client list) into the truncated ${path}`,
            timeoutMs: 30_000,
          });
          const head = (await Deno.readFile(path)).subarray(0, 1);
          assert.notEqual(head[0], 0, `${path} starts with text, not a hole left by truncation`);
        }

        assert.equal(readerEnded, false, "the `tail -f` reading re6stnet.log is left running");
        for (const n of net.nodes) assert.ok(n.process, `${n.name}'s node still runs`);
        await net.waitReachable({
          timeoutMs: SCENARIO.rejoinMs,
          what: "reachability after rotation",
        });
      });
    } finally {
      await Deno.remove(workDir, { recursive: true }).catch(() => {});
    }
  },
});
