// `re6st admin`: the registry's private methods (PROTOCOL.md §4.4, §4.6) through the registry
// client, one command at a time, with one-line errors and the exit codes of `re6st status`.

import { cnFromPrefix } from "../core/addressing.ts";
import { ADMIN_SPEC, type AdminCommand, parseAdmin } from "../core/options/admin.ts";
import { renderHelp } from "../core/options/help.ts";
import { RegistryClient, RegistryError, RegistryForbiddenError } from "../core/registry/client.ts";
import { randomToken } from "../core/registry/tokens.ts";
import { describeError } from "../core/errors.ts";
import { type Io, UsageError } from "./io.ts";

/** One line for `re6st --help`. */
export const summary = ADMIN_SPEC.summary;
/** The complete help of `re6st admin`. */
export const help = renderHelp(ADMIN_SPEC);

/** Exit codes, as `re6st status` has them. */
export const EXIT = { ok: 0, failed: 1, usage: 2, forbidden: 4 } as const;

/** What a command printed and how it ended. */
interface Outcome {
  code: number;
  /** Lines for people, or a value printed as JSON with --json. */
  text: string;
  json?: unknown;
}

const ok = (text: string, json?: unknown): Outcome => ({ code: EXIT.ok, text, json });

function table(rows: string[][]): string {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  return rows.map((r) => r.map((c, i) => c.padEnd(widths[i])).join("  ").trimEnd()).join("\n");
}

/** The nodes of a `versions` answer by CN, in CN order. */
export function versionRows(
  versions: Record<string, string | null>,
): { cn: string; prefix: string; version: string | null }[] {
  return Object.entries(versions)
    .map(([prefix, version]) => ({ cn: cnFromPrefix(prefix), prefix, version }))
    .sort((a, b) => a.prefix.length - b.prefix.length || a.prefix.localeCompare(b.prefix));
}

async function execute(client: RegistryClient, c: AdminCommand): Promise<Outcome> {
  switch (c.kind) {
    case "revoke":
      await client.revoke(c.cnOrSerial);
      return ok(`Revoked ${/^\d+$/.test(c.cnOrSerial) ? "serial " : ""}${c.cnOrSerial}`);
    case "token-add": {
      const token = c.token ?? randomToken();
      await client.addToken(c.email, token);
      return ok(token, { email: c.email, token });
    }
    case "token-check": {
      const exists = await client.isToken(c.token);
      return {
        code: exists ? EXIT.ok : EXIT.failed,
        text: `Token ${c.token} ${exists ? "exists" : "does not exist"}`,
        json: { token: c.token, exists },
      };
    }
    case "token-delete":
      await client.deleteToken(c.token);
      return ok(`Token ${c.token} deleted (if it existed)`);
    case "prefix": {
      const cn = await client.getNodePrefix(c.email);
      const subnet = cn === null ? null : await client.getIPv6Address(c.email);
      if (cn === null) {
        return {
          code: EXIT.failed,
          text: `No node is registered with ${c.email}`,
          json: { email: c.email, cn: null, subnet: null },
        };
      }
      return ok(`${cn} ${subnet ?? "-"}`, { email: c.email, cn, subnet });
    }
    case "hmac-rotate":
      await client.updateHMAC();
      return ok("Babel HMAC keys advanced one step; nodes follow the new configuration");
    case "versions": {
      const rows = versionRows(await client.versions());
      return ok(
        table([["NODE", "VERSION"], ...rows.map((r) => [r.cn, r.version ?? "(no answer)"])]),
        rows,
      );
    }
    case "topology": {
      const topology = await client.topology();
      const answered = new Set(topology[""] ?? []);
      const rows = Object.entries(topology).filter(([cn]) => cn !== "")
        .map(([cn, to]) => [cn, answered.has(cn) ? "yes" : "no", to.join(" ") || "-"]);
      return ok(table([["NODE", "ANSWERED", "TUNNELS TO"], ...rows]), topology);
    }
  }
}

/** The failure of a registry call in words an administrator can act on, and its exit code. */
function failure(e: RegistryError, c: AdminCommand): { code: number; message: string } {
  if (e instanceof RegistryForbiddenError) {
    // This implementation says why; others (the reference) answer a bare 403.
    const why = e.reason ??
      (c.kind === "token-add"
        ? "this machine is not an authorized origin of the registry, or registration by " +
          "e-mail is disabled there (--prefix-length 0)"
        : "this machine is not an authorized origin of the registry (by default only " +
          "127.0.0.1 and ::1; see its --authorized-origin)" +
          (c.kind === "revoke" ? ", or the CN is the registry's own node" : ""));
    return { code: EXIT.forbidden, message: `${e.url}: forbidden (HTTP 403): ${why}` };
  }
  const detail: Record<number, string | undefined> = {
    404: c.kind === "revoke"
      ? `no certificate with ${/^\d+$/.test(c.cnOrSerial) ? "serial" : "CN"} ${c.cnOrSerial}`
      : undefined,
    409: c.kind === "token-add" ? `token ${c.token} already exists` : undefined,
    500: c.kind === "revoke" && /^\d+$/.test(c.cnOrSerial)
      ? `no certificate with serial ${c.cnOrSerial}, or the registry failed (HTTP 500)`
      : undefined,
  };
  const known = e.status === undefined ? undefined : detail[e.status];
  return { code: EXIT.failed, message: known ? `${e.url}: ${known}` : e.message };
}

/** Runs `re6st admin`; returns the exit code. */
export async function run(args: string[], io: Io): Promise<number> {
  const parsed = parseAdmin(args);
  if (parsed.help) {
    io.out(help);
    return EXIT.ok;
  }
  const o = parsed.options;
  let client: RegistryClient;
  try {
    client = new RegistryClient(o.registry, { timeoutMs: o.timeout * 1000 });
  } catch (e) {
    throw new UsageError(`option --registry: ${describeError(e)}`, { cause: e });
  }
  let outcome: Outcome;
  try {
    outcome = await execute(client, o.command);
  } catch (e) {
    if (!(e instanceof RegistryError)) throw e;
    const f = failure(e, o.command);
    io.err(`re6st admin: ${f.message}`);
    return f.code;
  }
  if (o.json && outcome.json !== undefined) io.out(JSON.stringify(outcome.json, null, 2));
  else if (outcome.code === EXIT.ok) io.out(outcome.text);
  else io.err(`re6st admin: ${outcome.text}`);
  return outcome.code;
}
