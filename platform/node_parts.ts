// The parts of a node running on this machine (core/node/parts.ts), in the current network
// namespace: the kernel over `ip` and `nft` journaled in the run folder, babeld, OpenVPN and
// its hooks, the UDP socket of the peer protocol, files, /proc, SQLite and the control socket.

import { createBabelClient } from "../core/babel/local.ts";
import { systemClock } from "../core/clock.ts";
import { runFile } from "../core/constants.ts";
import { GEOIP_ENV } from "../core/geoip.ts";
import type { Logger } from "../core/log.ts";
import { openCacheFile } from "../core/node/cache.ts";
import type { Identity } from "../core/node/identity.ts";
import type { NodeFiles, NodeHost, NodeParts } from "../core/node/parts.ts";
import type { ManagedProcess } from "../core/node/supervisor.ts";
import type { NodeOptions } from "../core/options/node.ts";
import { RegistryClient } from "../core/registry/client.ts";
import { unixConnector } from "./babel_socket.ts";
import { startBabeld } from "./babeld.ts";
import { serveControl } from "./control.ts";
import { startHookServer, writeHookScript } from "./hook_server.ts";
import { createLinuxKernel } from "./linux.ts";
import { startOpenVpn } from "./openvpn.ts";
import { createRunner, type Runner } from "./runner.ts";
import { selfArgv, selfEnv } from "./self.ts";
import { openPrivateDatabase } from "./sqlite_file.ts";
import { openUdpSocket } from "./udp.ts";
import { createPortMapper } from "./upnp.ts";

/** Implementation: the node's registry calls must not hold the tunnel manager (or a stop). */
const REGISTRY_TIMEOUT_MS = 20_000;

function asManaged<E>(
  p: { pid: number; exited: Promise<E>; stop(g?: number): Promise<E> },
  map: (e: E) => { code: number; signal: string | null; lastLines: string[] },
): ManagedProcess {
  return {
    pid: p.pid,
    exited: p.exited.then(map),
    stop: (g) => p.stop(g).then(map),
  };
}

function spawned(runner: Runner, argv: string[], env: Record<string, string>): ManagedProcess {
  const c = runner.spawn(argv, { env, stdout: "inherit", stderr: "inherit", processGroup: true });
  const map = (s: { code: number; signal: string | null }) => ({ ...s, lastLines: [] });
  return { pid: c.pid, exited: c.status.then(map), stop: (g) => c.stop(g).then(map) };
}

/** The real file system. */
export const realFiles: NodeFiles = {
  readFile: (path) => Deno.readFileSync(path),
  async readText(path) {
    try {
      return await Deno.readTextFile(path);
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) return null;
      throw e;
    }
  },
  async exists(path) {
    try {
      await Deno.stat(path);
      return true;
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) return false;
      throw e;
    }
  },
  async writeText(path, text, mode) {
    await Deno.writeTextFile(path, text, mode === undefined ? {} : { mode });
  },
  async replaceText(path, text) {
    const tmp = `${path}.new`;
    const old = await Deno.stat(path);
    await Deno.writeTextFile(tmp, text, { mode: (old.mode ?? 0o644) & 0o777 });
    if (old.uid !== null && old.gid !== null) await Deno.chown(tmp, old.uid, old.gid);
    await Deno.rename(tmp, path);
  },
  rename: (from, to) => Deno.rename(from, to),
  async mkdir(path, mode) {
    await Deno.mkdir(path, { recursive: true });
    if (mode !== undefined) await Deno.chmod(path, mode);
  },
  async remove(path) {
    try {
      await Deno.remove(path, { recursive: true });
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) return;
      // A mount point (systemd's RuntimeDirectory=/run/re6stnet) cannot go: empty it instead.
      if (!(e instanceof Deno.errors.Busy) && (e as { code?: string }).code !== "EBUSY") throw e;
      for await (const entry of Deno.readDir(path)) {
        await Deno.remove(`${path}/${entry.name}`, { recursive: true });
      }
    }
  },
};

/** Start time of a process (`/proc/<pid>/stat` field 22), or null when it does not exist. */
async function processStart(pid: number): Promise<string | null> {
  try {
    const stat = await Deno.readTextFile(`/proc/${pid}/stat`);
    // Fields after the command name (which may hold spaces) start after the last ")".
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19] ?? null;
  } catch {
    return null;
  }
}

/** This machine's processes, through /proc. */
export const realHost: NodeHost = {
  pid: Deno.pid,
  async processName(pid) {
    try {
      return (await Deno.readTextFile(`/proc/${pid}/comm`)).trim();
    } catch {
      return null;
    }
  },
  processStart,
  async listProcesses() {
    const out = [];
    for await (const e of Deno.readDir("/proc")) {
      if (!/^\d+$/.test(e.name)) continue;
      const pid = Number(e.name);
      try {
        const [start, name, cmdline] = await Promise.all([
          processStart(pid),
          Deno.readTextFile(`/proc/${pid}/comm`),
          Deno.readTextFile(`/proc/${pid}/cmdline`),
        ]);
        if (start !== null) {
          out.push({ pid, start, name: name.trim(), cmdline: cmdline.replaceAll("\0", " ") });
        }
      } catch {
        // Gone meanwhile.
      }
    }
    return out;
  },
  kill(pid, signal) {
    try {
      Deno.kill(pid, signal);
    } catch {
      // Already gone.
    }
  },
  path: Deno.env.get("PATH") ?? "/usr/sbin:/usr/bin:/sbin:/bin",
  memory() {
    const { rss, heapUsed, heapTotal, external } = Deno.memoryUsage();
    return { rss, heapUsed, heapTotal, external };
  },
};

/** The GeoIP part when GEOIP2_MMDB names a file: its reader is imported only then. */
function geoIpPart(path: string | undefined): Pick<NodeParts, "openGeoIp"> {
  if (!path) return {};
  return { openGeoIp: async () => (await import("./geoip.ts")).openGeoIp(path) };
}

/** The parts of a node running with `opts` on this machine. */
export function realNodeParts(opts: NodeOptions, log: Logger): NodeParts {
  const runner = createRunner();
  return {
    kernel: createLinuxKernel(runner, {
      log: log.child("kernel"),
      journal: runFile(opts.run, "kernelJournal"),
    }),
    registry: (id: Identity) =>
      new RegistryClient(opts.registry, {
        timeoutMs: REGISTRY_TIMEOUT_MS,
        identity: { prefix: id.prefix, key: id.key, ca: id.ca.publicKey },
      }),
    babel: {
      start: async (config) =>
        asManaged(
          await startBabeld({ runner, config }),
          (e) => ({ code: e.code, signal: e.signal, lastLines: e.lastLog }),
        ),
      client: (socket) =>
        createBabelClient({
          connect: unixConnector(socket),
          where: socket,
          log: log.child("babel"),
        }),
    },
    openvpn: {
      start: (name, args, logFile) =>
        Promise.resolve(asManaged(
          startOpenVpn(runner, { name, args, log: log.child("openvpn"), logFile }),
          (e) => ({ code: e.code, signal: e.signal, lastLines: e.lastLines }),
        )),
      async writeHookScript(scriptPath, socket) {
        await writeHookScript(scriptPath, selfArgv(), socket, selfEnv());
        return scriptPath;
      },
      serveHooks: (socket, handler) =>
        startHookServer({ path: socket, handler, log: log.child("hook") }),
    },
    peerSocket: (onDatagram, onError) => openUdpSocket({ onDatagram, onError }),
    shell: {
      async run(cmd, env, signal) {
        const r = await runner.run(["sh", "-c", cmd], {
          env,
          ok: "any",
          processGroup: true,
          signal,
        });
        for (const line of (r.stdout + r.stderr).split("\n").filter((l) => l)) {
          log.info(`--up: ${line}`);
        }
        return r.code;
      },
      spawn: (cmd, env) => spawned(runner, ["sh", "-c", cmd], env),
    },
    files: realFiles,
    host: realHost,
    openCache: (path) =>
      openCacheFile(path, openPrivateDatabase, Deno.renameSync, {
        onReset: (why) => log.warn(`Cache ${path} reset (old file kept as ${path}.bak): ${why}`),
      }),
    serveControl: (path, handler) => serveControl(path, handler, (m) => log.warn(m)),
    portMapper: () => createPortMapper(),
    ...geoIpPart(Deno.env.get(GEOIP_ENV)),
    clock: systemClock,
    log,
  };
}
