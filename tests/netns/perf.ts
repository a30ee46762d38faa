/**
 * Measuring a lab network for the benches: process memory and CPU from /proc, iperf3
 * throughput between two hosts, and a bare OpenVPN tunnel (no re6st) to compare with.
 */
import { join } from "node:path";
import type { Child, Lab } from "./lab.ts";
import { TAP_PREFIX } from "../../core/constants.ts";

/** One process as /proc shows it. */
export interface ProcSample {
  pid: number;
  comm: string;
  /** Resident memory, KiB. */
  rssKb: number;
  /** User + system CPU time, clock ticks. */
  ticks: number;
}

/** Clock ticks per second of /proc/<pid>/stat (USER_HZ, 100 on Linux). */
export const USER_HZ = 100;

/** Reads /proc/<pid>/stat and status; null when the process is gone. */
export function procSample(pid: number): ProcSample | null {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    const close = stat.lastIndexOf(")");
    const comm = stat.slice(stat.indexOf("(") + 1, close);
    const fields = stat.slice(close + 2).split(" "); // fields[0] is field 3 (state)
    const ticks = Number(fields[11]) + Number(fields[12]); // utime (14), stime (15)
    const status = Deno.readTextFileSync(`/proc/${pid}/status`);
    const rssKb = Number(/^VmRSS:\s+(\d+)/m.exec(status)?.[1] ?? 0);
    return { pid, comm, rssKb, ticks };
  } catch {
    return null;
  }
}

/** Pids of the processes whose network namespace is the host's. */
export async function hostPids(lab: Lab, host: string): Promise<number[]> {
  const r = await lab.exec(host, ["ip", "netns", "pids", lab.host(host).ns]);
  return r.stdout.split(/\s+/).filter((p) => p).map(Number);
}

/** Memory and CPU of one node's processes over a window. */
export interface RestUsage {
  /** RSS of the `re6st node` process, MiB. */
  nodeRssMb: number;
  /** RSS of its babeld and OpenVPN processes together, MiB. */
  childrenRssMb: number;
  /** Number of OpenVPN processes. */
  openvpn: number;
  /** CPU of the `re6st node` process, % of one core. */
  nodeCpuPct: number;
  /** CPU of the node and its children together, % of one core. */
  allCpuPct: number;
  /**
   * Traffic of each tunnel at rest (received + sent at its client end, bytes per second): the
   * client taps, one per tunnel; a server's tap carries all its clients and is left out.
   */
  tapBytesPerS: number[];
}

/** Client tunnel taps (re6stnet0, re6stnet1…), not the servers' (re6stnet-udp…). */
const CLIENT_TAP = new RegExp(`^${TAP_PREFIX}\\d+$`);

/** Bytes received + sent so far by each re6st tap of a host (`ip -s -j link`). */
export async function tapBytes(lab: Lab, host: string): Promise<Map<string, number>> {
  const r = await lab.exec(host, ["ip", "-s", "-j", "link", "show"]);
  const out = new Map<string, number>();
  if (r.code !== 0) return out;
  const links = JSON.parse(r.stdout) as {
    ifname: string;
    stats64?: { rx?: { bytes?: number }; tx?: { bytes?: number } };
  }[];
  for (const l of links) {
    if (!l.ifname.startsWith(TAP_PREFIX)) continue;
    out.set(l.ifname, (l.stats64?.rx?.bytes ?? 0) + (l.stats64?.tx?.bytes ?? 0));
  }
  return out;
}

/**
 * Samples the node process `nodePid` and the babeld/openvpn processes of its host over
 * `windowMs`, leaving out `exclude` (e.g. the registry beside the registry's node).
 */
export async function restUsage(
  lab: Lab,
  host: string,
  nodePid: number,
  windowMs: number,
  exclude: readonly number[] = [],
): Promise<RestUsage> {
  const pids = (await hostPids(lab, host)).filter((p) => !exclude.includes(p));
  const pick = (s: ProcSample | null): s is ProcSample =>
    s !== null && (s.pid === nodePid || s.comm === "babeld" || s.comm === "openvpn");
  const before = pids.map(procSample).filter(pick);
  const tapsBefore = await tapBytes(lab, host);
  const t0 = performance.now();
  await new Promise((r) => setTimeout(r, windowMs));
  const seconds = (performance.now() - t0) / 1000;
  const tapsAfter = await tapBytes(lab, host);
  const tapBytesPerS = [...tapsAfter]
    .filter(([tap, n]) => CLIENT_TAP.test(tap) && tapsBefore.has(tap) && n > 0)
    .map(([tap, n]) => (n - tapsBefore.get(tap)!) / seconds)
    .filter((bps) => bps > 0); // a free tap, no tunnel on it
  const after = new Map(pids.map(procSample).filter(pick).map((s) => [s.pid, s]));
  let nodeTicks = 0, allTicks = 0, nodeRss = 0, childRss = 0, openvpn = 0;
  for (const b of before) {
    const a = after.get(b.pid);
    if (!a) continue;
    const d = a.ticks - b.ticks;
    allTicks += d;
    if (a.pid === nodePid) {
      nodeTicks = d;
      nodeRss = a.rssKb;
    } else {
      childRss += a.rssKb;
      if (a.comm === "openvpn") openvpn++;
    }
  }
  const pct = (ticks: number) => 100 * ticks / USER_HZ / seconds;
  return {
    nodeRssMb: nodeRss / 1024,
    childrenRssMb: childRss / 1024,
    openvpn,
    nodeCpuPct: pct(nodeTicks),
    allCpuPct: pct(allTicks),
    tapBytesPerS,
  };
}

/** Result of one iperf3 run. */
export interface Throughput {
  /** Received bits per second (receiver side), in Mbit/s. */
  mbps: number;
  /** TCP retransmissions seen by the sender. */
  retransmits: number;
}

/** Runs iperf3 for `seconds` from `client` to `server` at `serverIp` (TCP, one stream). */
export async function iperf(
  lab: Lab,
  server: string,
  serverIp: string,
  client: string,
  opts: { seconds?: number; bindIp?: string; port?: number } = {},
): Promise<Throughput> {
  const port = String(opts.port ?? 5201);
  const srv = lab.spawn(server, ["iperf3", "-s", "-1", "-B", serverIp, "-p", port]);
  try {
    await lab.waitFor(
      async () => (await lab.exec(server, ["ss", "-ltnH", `sport = :${port}`])).stdout.trim(),
      { what: `iperf3 listening on ${server}`, timeoutMs: 10_000 },
    );
    const r = await lab.exec(client, [
      "iperf3",
      "-c",
      serverIp,
      "-p",
      port,
      "-t",
      String(opts.seconds ?? 5),
      "-J",
      ...(opts.bindIp ? ["-B", opts.bindIp] : []),
    ], { timeoutMs: ((opts.seconds ?? 5) + 30) * 1000 });
    if (r.code !== 0) {
      throw new Error(`iperf3 ${client} → ${server} (${serverIp}) failed: ${r.stdout || r.stderr}`);
    }
    const j = JSON.parse(r.stdout);
    return {
      mbps: j.end.sum_received.bits_per_second / 1e6,
      retransmits: j.end.sum_sent.retransmits ?? 0,
    };
  } finally {
    await srv.stop(2000);
  }
}

/** A bare OpenVPN tunnel between two hosts. */
export interface BareTunnel {
  /** IPv6 address of each end on the tap. */
  readonly ipA: string;
  readonly ipB: string;
  stop(): Promise<void>;
}

/** Files and settings of {@link bareOpenVpn}. */
export interface BareOpenVpnOptions {
  /** CA certificate, and each side's certificate and key (PEM files). */
  ca: string;
  certA: string;
  keyA: string;
  certB: string;
  keyB: string;
  /** Underlay address of `b`, where `a` connects. */
  addressB: string;
  /** "tcp" (default) or "udp". */
  proto?: "tcp" | "udp";
  port?: number;
  /** Encrypt the data channel (default false, as re6st networks by default). */
  encrypt?: boolean;
  /** Folder for the two log files. */
  logDir: string;
}

const PLAIN = ["--cipher", "none", "--data-ciphers", "none", "--data-ciphers-fallback", "none"];

/**
 * Starts a point-to-point OpenVPN tap tunnel (TLS, same data-channel settings re6st uses)
 * from `a` (client) to `b` (server), and gives its ends fd99::1 and fd99::2.
 */
export async function bareOpenVpn(
  lab: Lab,
  a: string,
  b: string,
  o: BareOpenVpnOptions,
): Promise<BareTunnel> {
  const port = String(o.port ?? 1195);
  const proto = o.proto ?? "tcp";
  const common = [
    ...["--dev-type", "tap", "--dev", "bare0", "--port", port, "--ca", o.ca],
    ...["--ping", "4", "--ping-exit", "30", "--verb", "3", "--reneg-sec", "0"],
    ...(o.encrypt ? [] : [...PLAIN, "--reneg-bytes", "0"]),
  ];
  const children: Child[] = [
    lab.spawn(b, [
      "openvpn",
      ...common,
      ...["--tls-server", "--dh", "none", "--cert", o.certB, "--key", o.keyB],
      ...["--proto", proto === "tcp" ? "tcp-server" : "udp4", "--local", o.addressB],
    ], { log: join(o.logDir, "bare-server.log") }),
    lab.spawn(a, [
      "openvpn",
      ...common,
      ...["--tls-client", "--cert", o.certA, "--key", o.keyA, "--nobind"],
      ...["--remote", o.addressB, port, proto === "tcp" ? "tcp-client" : "udp4"],
    ], { log: join(o.logDir, "bare-client.log") }),
  ];
  const stop = async () => {
    await Promise.allSettled(children.map((c) => c.stop(3000)));
  };
  try {
    for (const [host, ip] of [[a, "fd99::1"], [b, "fd99::2"]]) {
      await lab.waitFor(
        async () => (await lab.exec(host, ["ip", "link", "show", "bare0"])).code === 0,
        { what: `the bare OpenVPN tap on ${host}`, timeoutMs: 30_000, intervalMs: 200 },
      );
      await lab.host(host).runner.run(["ip", "link", "set", "bare0", "up"]);
      await lab.host(host).runner.run([
        "ip",
        "-6",
        "addr",
        "add",
        `${ip}/64`,
        "dev",
        "bare0",
        "nodad",
      ]);
    }
    await lab.waitFor(
      async () => (await lab.exec(a, ["ping", "-c", "1", "-W", "1", "fd99::2"])).code === 0,
      { what: "the bare OpenVPN tunnel to carry pings", timeoutMs: 60_000, intervalMs: 500 },
    );
  } catch (e) {
    await stop();
    throw e;
  }
  return { ipA: "fd99::1", ipB: "fd99::2", stop };
}
