import { problems, type StatusDocument } from "./document.ts";

function ago(from: string, now: string): string {
  const s = Math.max(0, Math.round((Date.parse(now) - Date.parse(from)) / 1000));
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.round(s / 60)}m`;
  if (s < 172800) return `${Math.round(s / 3600)}h`;
  return `${Math.round(s / 86400)}d`;
}

function table(rows: string[][]): string[] {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => (r[i] ?? "").length)));
  return rows.map((r) => r.map((c, i) => c.padEnd(widths[i])).join("  ").trimEnd());
}

/** The UPnP line(s) of the summary: one per mapping, or why there is none. */
function upnpLines(u: StatusDocument["upnp"]): string[] {
  if (!u) return [];
  if (!u.mappings.length) {
    return [`  upnp      ${u.state}${u.lastError ? `: ${u.lastError}` : ""}`];
  }
  return u.mappings.map((m) =>
    `  upnp      ${m.externalIp}:${m.externalPort}/${m.protocol} → ` +
    `${m.internalClient}:${m.internalPort}` +
    (m.leaseEnd ? ` (lease until ${m.leaseEnd.slice(11, 16)})` : "")
  );
}

const mib = (bytes: number) => (bytes / 1048576).toFixed(1);

/** Renders the status document as a summary for people. */
export function renderStatus(doc: StatusDocument): string {
  const id = doc.identity;
  const nc = doc.networkConfig;
  const lines = [
    `re6st node ${id.cn} (${id.ip})   state: ${doc.state}, up ${ago(doc.startedAt, doc.now)}`,
    `  network   ${id.network}   subnet ${id.subnet}`,
    `  cert      serial ${id.serial}, expires ${doc.certificate.notAfter.slice(0, 10)}, ` +
    `renewal ${doc.certificate.renewAt.slice(0, 10)}`,
    `  registry  ${doc.registry.url}  ${doc.registry.reachable ? "reachable" : "NOT reachable"}` +
    (doc.registry.lastError ? `  (last error: ${doc.registry.lastError})` : ""),
    `  config    version ${nc.version ?? "none"}, hello ${nc.hello ?? "?"}s, ` +
    `client_count ${nc.clientCount ?? "?"}, max_clients ${nc.maxClients ?? "?"}, ` +
    `encrypt ${nc.encrypt ?? "?"}`,
    `  babel     ${doc.babel.running ? "running" : "NOT running"}, ` +
    `${doc.babel.neighbours.length} neighbours, ${doc.babel.routes} routes, ` +
    `${doc.babel.knownNodes} nodes known`,
    `  peers     ${doc.peers.cacheSize} cached, ${doc.peers.connected} with a session` +
    (doc.gateway.enabled ? "   gateway: exporting a default route" : ""),
    ...upnpLines(doc.upnp),
    `  memory    ${mib(doc.memory.rss)} MiB resident, JavaScript heap ${
      mib(doc.memory.heapUsed)
    } ` +
    `of ${mib(doc.memory.heapTotal)} MiB used`,
    "",
  ];
  if (doc.tunnels.length) {
    lines.push(
      ...table([
        ["TUNNEL", "PEER", "IFACE", "PROTO", "REMOTE", "UP", "COST"],
        ...doc.tunnels.map((t) => [
          t.direction,
          t.peer,
          t.interface,
          t.protocol,
          t.remote ?? "-",
          t.established ? ago(t.since, doc.now) : "connecting",
          t.babelCost === null ? "-" : String(t.babelCost),
        ]),
      ]),
    );
  } else {
    lines.push("no tunnels");
  }
  lines.push("");
  lines.push(
    ...table([
      ["PROCESS", "PID", "STATE", "RESTARTS", "LAST EXIT"],
      ...doc.children.map((c) => [
        c.name,
        c.pid === null ? "-" : String(c.pid),
        c.state,
        String(c.restarts),
        c.lastExit ?? "-",
      ]),
    ]),
  );
  const bad = problems(doc);
  if (bad.length) lines.push("", `UNHEALTHY: ${bad.join("; ")}`);
  if (doc.errors.length) {
    lines.push("", "recent errors:");
    for (const e of doc.errors.slice(-5)) lines.push(`  ${e.time}  ${e.message}`);
  }
  return lines.join("\n");
}
