// Counters the kernel keeps, read for the metrics: an interface's bytes and packets
// (/sys/class/net/<iface>/statistics), the TCP connections of a port (/proc/net/tcp, tcp6),
// and the size of a database with its journal. All for the network namespace of this process.

import type { TapCounters } from "../core/metrics/node.ts";

const STATS = ["rx_bytes", "tx_bytes", "rx_packets", "tx_packets"] as const;

/** Byte and packet counters of `iface`, or null when it does not exist. */
export async function interfaceCounters(
  iface: string,
  sys = "/sys/class/net",
): Promise<TapCounters | null> {
  if (!/^[\w.-]+$/.test(iface)) return null; // never a path outside the interface's folder
  try {
    const [rxBytes, txBytes, rxPackets, txPackets] = await Promise.all(
      STATS.map(async (s) => Number(await Deno.readTextFile(`${sys}/${iface}/statistics/${s}`))),
    );
    return { rxBytes, txBytes, rxPackets, txPackets };
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw new Error(`Cannot read the counters of interface ${iface}`, { cause: e });
  }
}

/** TCP states that are not an open connection: LISTEN, TIME_WAIT, CLOSE. */
const NOT_OPEN = new Set(["0A", "06", "07"]);

/** Open TCP connections whose local port is `port`, from the text of /proc/net/tcp{,6}. */
export function countConnections(tables: string[], port: number): number {
  const hexPort = port.toString(16).toUpperCase().padStart(4, "0");
  let n = 0;
  for (const table of tables) {
    for (const line of table.split("\n").slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length < 4) continue;
      if (f[1].endsWith(`:${hexPort}`) && !NOT_OPEN.has(f[3])) n++;
    }
  }
  return n;
}

/** Open TCP connections to local port `port` (IPv4 and IPv6). */
export async function tcpConnections(port: number): Promise<number> {
  const tables = await Promise.all(
    ["/proc/net/tcp", "/proc/net/tcp6"].map((p) => Deno.readTextFile(p).catch(() => "")),
  );
  return countConnections(tables, port);
}

/** Bytes on disk of an SQLite database: the file, its WAL and shared-memory files. */
export async function databaseBytes(path: string): Promise<number | null> {
  let total = 0;
  for (const file of [path, `${path}-wal`, `${path}-shm`]) {
    try {
      total += (await Deno.stat(file)).size;
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
      if (file === path) return null;
    }
  }
  return total;
}
