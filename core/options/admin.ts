// `re6st admin`: the command words (revoke, token add|check|delete, prefix, hmac rotate,
// versions, topology) and options, parsed without I/O.

import { UsageError } from "../errors.ts";
import { parseTokens, type Token } from "./parser.ts";
import type { CommandSpec } from "./spec.ts";

/** Registry URL used when none is given: the registry on this host, an authorized origin. */
export const ADMIN_DEFAULT_REGISTRY = "http://127.0.0.1/";

/** The administrative commands and their words, for --help and for parsing. */
const COMMANDS = [
  ["revoke CN|SERIAL", "revoke a certificate by CN (e.g. 6/16: the prefix"],
  ["", "is freed) or serial (decimal: the prefix stays taken)"],
  ["token add EMAIL [TOKEN]", "store a registration token for EMAIL and print it"],
  ["", "(a random one unless TOKEN is given)"],
  ["token check TOKEN", "exit 0 when the token exists, 1 when it does not"],
  ["token delete TOKEN", "delete a token"],
  ["prefix EMAIL", "CN and subnet of the node registered with EMAIL"],
  ["hmac rotate", "advance the rotation of the Babel HMAC keys one step"],
  ["versions", "software version and platform of every node the"],
  ["", "registry reaches"],
  ["topology", "the tunnels between nodes, as the registry crawls"],
  ["", "them"],
] as const;

/** `re6st admin` options. */
export const ADMIN_SPEC: CommandSpec = {
  name: "admin",
  summary: "administer a registry: revoke, tokens, prefixes, HMAC keys, versions, topology",
  usage: "re6st admin [--registry URL] [--json] [--timeout S] COMMAND [ARGUMENTS]",
  description:
    "Calls the private methods of a registry (PROTOCOL.md §4.4). The registry accepts them " +
    "only from its authorized origins: 127.0.0.1 and ::1, and the addresses given to its " +
    "--authorized-origin; behind a reverse proxy, the X-Forwarded-For header the proxy adds " +
    "must be one of them too. So run it on the registry host, against the registry's own " +
    "address rather than its public URL.",
  optionFiles: false,
  options: [
    {
      long: "registry",
      dest: "registry",
      type: "string",
      metavar: "URL",
      default: ADMIN_DEFAULT_REGISTRY,
      help: "the registry to administer",
    },
    {
      long: "json",
      dest: "json",
      type: "flag",
      help: "print the answer as JSON (prefix, token check, versions, topology)",
    },
    {
      long: "timeout",
      dest: "timeout",
      type: "number",
      min: 0.001,
      metavar: "S",
      default: 60,
      help: "time limit of each request to the registry, in seconds (versions and topology " +
        "wait about 3 s for nodes to answer)",
    },
  ],
  epilog: [
    "Commands:",
    ...COMMANDS.map(([words, help]) => `  ${words.padEnd(24)}${help}`),
    "",
    "Exit codes:",
    "  0  done (token check: the token exists)",
    "  1  failed: the registry could not be reached or refused (no such certificate, token",
    "     already there, …); token check: no such token; prefix: no node with that e-mail",
    "  2  usage error",
    "  4  forbidden (HTTP 403): this machine is not an authorized origin of the registry (the",
    "     message names the address the registry saw and those it accepts), or e-mail",
    "     registration is disabled (token add)",
  ].join("\n"),
};

/** One administrative command, checked. */
export type AdminCommand =
  | { kind: "revoke"; cnOrSerial: string }
  | { kind: "token-add"; email: string; token?: string }
  | { kind: "token-check"; token: string }
  | { kind: "token-delete"; token: string }
  | { kind: "prefix"; email: string }
  | { kind: "hmac-rotate" }
  | { kind: "versions" }
  | { kind: "topology" };

/** Options of `re6st admin`, typed and checked. */
export interface AdminOptions {
  registry: string;
  json: boolean;
  /** Seconds. */
  timeout: number;
  command: AdminCommand;
}

/** Result of parsing: help asked, or the options. */
export type AdminParse = { help: true } | { help: false; options: AdminOptions };

const CN_OR_SERIAL = /^(\d+|\d+\/\d+)$/;

function commandOf(words: string[]): AdminCommand {
  const [first, second, ...rest] = words;
  const arity = (name: string, want: number, got: string[]) => {
    if (got.length !== want) {
      throw new UsageError(
        `${name}: expects ${want} argument${want === 1 ? "" : "s"}, got ${got.length}` +
          (got.length ? ` (${got.join(" ")})` : ""),
      );
    }
  };
  switch (first) {
    case undefined:
      throw new UsageError("missing command (try: re6st admin --help)");
    case "revoke":
      arity("revoke", 1, words.slice(1));
      if (!CN_OR_SERIAL.test(second)) {
        throw new UsageError(
          `revoke: "${second}" is neither a CN (e.g. 6/16) nor a serial number`,
        );
      }
      return { kind: "revoke", cnOrSerial: second };
    case "token":
      if (second === "add") {
        if (rest.length < 1 || rest.length > 2) {
          throw new UsageError("token add: expects EMAIL and an optional TOKEN");
        }
        return { kind: "token-add", email: rest[0], token: rest[1] };
      }
      if (second === "check" || second === "delete") {
        arity(`token ${second}`, 1, rest);
        return { kind: second === "check" ? "token-check" : "token-delete", token: rest[0] };
      }
      throw new UsageError(
        `token: expects add, check or delete${second ? `, not "${second}"` : ""}`,
      );
    case "prefix":
      arity("prefix", 1, words.slice(1));
      return { kind: "prefix", email: second };
    case "hmac":
      if (second !== "rotate" || rest.length) {
        throw new UsageError('admin hmac: the only command is "hmac rotate"');
      }
      return { kind: "hmac-rotate" };
    case "versions":
    case "topology":
      arity(first, 0, words.slice(1));
      return { kind: first };
    default:
      throw new UsageError(`unknown command "${first}" (try: re6st admin --help)`);
  }
}

/** Parses `re6st admin` arguments: options anywhere, command words in order. */
export function parseAdmin(argv: string[]): AdminParse {
  const tokens: Token[] = [];
  const words: string[] = [];
  let help = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "-h" || a === "--help") help = true;
    else if (a.startsWith("--") && a.length > 2) {
      tokens.push({ text: a });
      const name = a.slice(2).split("=")[0];
      const named = ADMIN_SPEC.options.filter((o) => o.long.startsWith(name)); // abbreviations
      const takesValue = named.length === 1 && named[0].type !== "flag";
      if (takesValue && !a.includes("=") && i + 1 < argv.length) tokens.push({ text: argv[++i] });
    } else if (a.startsWith("-") && a.length > 1 && !/^-\d/.test(a)) {
      tokens.push({ text: a }); // refused by the parser with its name
    } else words.push(a);
  }
  if (help) return { help: true };
  const p = parseTokens(ADMIN_SPEC, tokens);
  return {
    help: false,
    options: {
      registry: p.registry as string,
      json: p.json as boolean,
      timeout: p.timeout as number,
      command: commandOf(words),
    },
  };
}
