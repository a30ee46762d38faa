// Lines of babeld's local configuration interface (stock 1.12.1, PROTOCOL.md §8.4.2).
//
// Every line babeld sends is one of: a banner line (`BABEL 1.0`, `version …`, `host …`,
// `my-id …`), an object line (`<add|change|flush> <interface|neighbour|xroute|route> …`)
// or a reply (`ok`, `no[ <message>]`, `bad`). Object lines are `key value` pairs after the
// object's identity; unknown keys are ignored so that newer babeld versions still parse.
// A malformed line is reported as `null`, never thrown.

/** Metric (and cost) value babeld uses for "unreachable". */
export const BABEL_INFINITY = 0xffff;

/** How an object line changes the view. */
export type BabelKind = "add" | "change" | "flush";

/** A babeld interface (`interface` line). */
export interface BabelInterface {
  name: string;
  up: boolean;
  /** Link-local IPv6 address, when up and known. */
  ipv6?: string;
  /** IPv4 address, when up and known. */
  ipv4?: string;
}

/** A Babel neighbour (`neighbour` line). */
export interface BabelNeighbour {
  /** babeld's opaque id (hex), stable for the life of the neighbour. */
  id: string;
  /** Link-local address of the neighbour. */
  address: string;
  /** Interface the neighbour is on. */
  iface: string;
  reach: number;
  ureach: number;
  rxcost: number;
  txcost: number;
  /** Round-trip time in milliseconds, when measured. */
  rtt?: number;
  rttcost?: number;
  /** Cost of the link (65535 = unreachable). */
  cost: number;
}

/** A route this babeld originates (`xroute` line). */
export interface BabelXroute {
  prefix: string;
  plen: number;
  from: string;
  fromPlen: number;
  metric: number;
}

/** A route learned from a neighbour (`route` line); installed or not. */
export interface BabelRoute {
  /** babeld's opaque id (hex), stable for the life of the route. */
  id: string;
  /** Destination address (IPv6 text, or dotted IPv4 for IPv4 routes). */
  prefix: string;
  plen: number;
  /** Source prefix address (`::` with fromPlen 0 for ordinary routes). */
  from: string;
  fromPlen: number;
  installed: boolean;
  /** Router id of the originator (EUI-64 text). */
  routerId: string;
  metric: number;
  /** Metric announced by the neighbour; 0 means the neighbour originates the route. */
  refmetric: number;
  /** Link-local address of the neighbour the route goes through. */
  via: string;
  /** Interface of that neighbour. */
  iface: string;
}

/** One object line, parsed. */
export type BabelEvent =
  | { kind: BabelKind; type: "interface"; value: BabelInterface }
  | { kind: BabelKind; type: "neighbour"; value: BabelNeighbour }
  | { kind: BabelKind; type: "xroute"; value: BabelXroute }
  | { kind: BabelKind; type: "route"; value: BabelRoute };

/** Final line of a command's answer. */
export interface BabelReply {
  status: "ok" | "no" | "bad";
  /** Text after `no`, if any (e.g. "No such interface"). */
  message?: string;
}

/** Any line babeld can send, parsed. */
export type BabelLine =
  | { type: "event"; event: BabelEvent }
  | { type: "reply"; reply: BabelReply }
  | { type: "banner"; key: string; value: string };

const KINDS: ReadonlySet<string> = new Set(["add", "change", "flush"]);
const HEX_ID = /^[0-9a-f]+$/i;
const UINT = /^\d+$/;
const IFNAME = /^[^\s/]{1,15}$/;

/** Parses one line from babeld's local interface; null when it is malformed or unknown. */
export function parseBabelLine(line: string): BabelLine | null {
  const text = line.endsWith("\r") ? line.slice(0, -1) : line;
  if (text === "ok" || text === "bad") return { type: "reply", reply: { status: text } };
  if (text === "no") return { type: "reply", reply: { status: "no" } };
  if (text.startsWith("no ")) {
    return { type: "reply", reply: { status: "no", message: text.slice(3) } };
  }
  const words = text.split(" ").filter((w) => w !== "");
  if (words.length === 0) return null;
  if (!KINDS.has(words[0])) {
    if (words.length >= 2 && ["BABEL", "version", "host", "my-id"].includes(words[0])) {
      return { type: "banner", key: words[0], value: words.slice(1).join(" ") };
    }
    return null;
  }
  const event = parseObject(words[0] as BabelKind, words[1], words.slice(2));
  return event ? { type: "event", event } : null;
}

function parseObject(kind: BabelKind, type: string, rest: string[]): BabelEvent | null {
  if (rest.length === 0) return null;
  const [name, ...pairs] = rest;
  const f = fields(pairs);
  if (!f) return null;
  switch (type) {
    case "interface": {
      if (!IFNAME.test(name)) return null;
      const up = bool(f.get("up"), "true", "false");
      if (up === null) return null;
      const value: BabelInterface = { name, up };
      const ipv6 = f.get("ipv6"), ipv4 = f.get("ipv4");
      if (ipv6 !== undefined) {
        if (!isIpv6(ipv6)) return null;
        value.ipv6 = ipv6;
      }
      if (ipv4 !== undefined) {
        if (!isIpv4(ipv4)) return null;
        value.ipv4 = ipv4;
      }
      return { kind, type, value };
    }
    case "neighbour": {
      const address = f.get("address"), iface = f.get("if");
      if (!HEX_ID.test(name) || !address || !isIpv6(address) || !iface || !IFNAME.test(iface)) {
        return null;
      }
      const reach = hex16(f.get("reach")), ureach = hex16(f.get("ureach"));
      const rxcost = uint(f.get("rxcost")), txcost = uint(f.get("txcost"));
      const cost = uint(f.get("cost"));
      if (reach === null || ureach === null || rxcost === null || txcost === null) return null;
      if (cost === null) return null;
      const value: BabelNeighbour = {
        id: name,
        address,
        iface,
        reach,
        ureach,
        rxcost,
        txcost,
        cost,
      };
      if (f.has("rtt")) {
        const rtt = Number(f.get("rtt")), rttcost = uint(f.get("rttcost"));
        if (!/^\d+(\.\d+)?$/.test(f.get("rtt")!) || rttcost === null) return null;
        value.rtt = rtt;
        value.rttcost = rttcost;
      }
      return { kind, type, value };
    }
    case "xroute": {
      const dst = prefix(f.get("prefix")), src = prefix(f.get("from"));
      const metric = uint(f.get("metric"));
      if (!dst || !src || metric === null) return null;
      if (name !== `${dst[0]}/${dst[1]}-${src[0]}/${src[1]}`) return null;
      return {
        kind,
        type,
        value: { prefix: dst[0], plen: dst[1], from: src[0], fromPlen: src[1], metric },
      };
    }
    case "route": {
      const dst = prefix(f.get("prefix")), src = prefix(f.get("from"));
      const installed = bool(f.get("installed"), "yes", "no");
      const metric = uint(f.get("metric")), refmetric = uint(f.get("refmetric"));
      const routerId = f.get("id"), via = f.get("via"), iface = f.get("if");
      if (!HEX_ID.test(name) || !dst || !src || installed === null) return null;
      if (metric === null || refmetric === null || !routerId || !/^[0-9a-f:]+$/i.test(routerId)) {
        return null;
      }
      if (!via || !isIpv6(via) || !iface || !IFNAME.test(iface)) return null;
      return {
        kind,
        type,
        value: {
          id: name,
          prefix: dst[0],
          plen: dst[1],
          from: src[0],
          fromPlen: src[1],
          installed,
          routerId,
          metric,
          refmetric,
          via,
          iface,
        },
      };
    }
    default:
      return null;
  }
}

/** `key value` pairs; null when a key has no value. The first occurrence of a key wins. */
function fields(words: string[]): Map<string, string> | null {
  if (words.length % 2 !== 0) return null;
  const m = new Map<string, string>();
  for (let i = 0; i < words.length; i += 2) {
    if (!m.has(words[i])) m.set(words[i], words[i + 1]);
  }
  return m;
}

function uint(s: string | undefined): number | null {
  if (s === undefined || !UINT.test(s) || s.length > 10) return null;
  return Number(s);
}

function hex16(s: string | undefined): number | null {
  return s !== undefined && /^[0-9a-f]{1,4}$/i.test(s) ? parseInt(s, 16) : null;
}

function bool(s: string | undefined, yes: string, no: string): boolean | null {
  return s === yes ? true : s === no ? false : null;
}

function isIpv6(s: string): boolean {
  return s.includes(":") && /^[0-9a-f:.]+$/i.test(s) && s.length <= 45;
}

function isIpv4(s: string): boolean {
  const p = s.split(".");
  return p.length === 4 && p.every((x) => UINT.test(x) && x.length <= 3 && Number(x) <= 255);
}

/** `addr/plen` → [addr, plen], checking the length against the family. */
function prefix(s: string | undefined): [string, number] | null {
  if (s === undefined) return null;
  const slash = s.indexOf("/");
  if (slash < 0) return null;
  const addr = s.slice(0, slash), plen = uint(s.slice(slash + 1));
  if (plen === null) return null;
  if (isIpv6(addr)) return plen <= 128 ? [addr, plen] : null;
  if (isIpv4(addr)) return plen <= 32 ? [addr, plen] : null;
  return null;
}
