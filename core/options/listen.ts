// `ADDR:PORT` values of options that bind a listener (--metrics): an IP literal, never a name,
// so that a service binds exactly where the operator said; the --metrics option itself.

import { parseIpv4, parseIpv6 } from "../addressing.ts";
import { UsageError } from "../errors.ts";
import type { OptionSpec } from "./spec.ts";

/** Where to listen: an IPv4 or IPv6 literal and a port. */
export interface ListenAddress {
  hostname: string;
  port: number;
}

/**
 * Parses `a.b.c.d:PORT` or `[v6]:PORT` (port 0: any free one); throws a one-line UsageError
 * naming `option`.
 */
export function parseListenAddress(text: string, option: string): ListenAddress {
  const bad = (why: string) =>
    new UsageError(
      `option --${option}: "${text}" ${why} (expected ADDR:PORT, e.g. 127.0.0.1:9100 or ` +
        "[::1]:9100)",
    );
  const m = /^(?:\[([^\]]*)\]|([^:\[\]]*)):(\d{1,5})$/.exec(text);
  if (!m) {
    throw bad(
      text.includes(":") && !text.startsWith("[") && text.split(":").length > 2
        ? "has an IPv6 address without brackets"
        : "is not an address and a port",
    );
  }
  const [, v6, v4, portText] = m;
  const port = Number(portText);
  if (port > 65535) throw bad("has a port above 65535");
  try {
    if (v6 !== undefined) parseIpv6(v6);
    else if (/^[\d.]+$/.test(v4)) parseIpv4(v4);
    else throw new Error("not an IP literal");
  } catch {
    throw bad(
      v6 !== undefined ? "has an invalid IPv6 address" : "needs an IP address (names are not " +
        "resolved)",
    );
  }
  return { hostname: v6 ?? v4, port };
}

/** Checks an optional `ADDR:PORT` option value; keeps its text. */
export function checkListenOption(value: unknown, option: string): string | undefined {
  if (value === undefined) return undefined;
  parseListenAddress(value as string, option);
  return value as string;
}

/** `ADDR:PORT` text of a listen address, brackets around IPv6. */
export function formatListenAddress(a: ListenAddress): string {
  return a.hostname.includes(":") ? `[${a.hostname}]:${a.port}` : `${a.hostname}:${a.port}`;
}

/** `--metrics ADDR:PORT`, the same on node and registry. */
export const METRICS_OPTION: OptionSpec = {
  long: "metrics",
  dest: "metrics",
  type: "string",
  metavar: "ADDR:PORT",
  help: "serve Prometheus metrics over HTTP at http://ADDR:PORT/metrics (an IP literal; " +
    "[v6]:PORT for IPv6); off by default",
};
