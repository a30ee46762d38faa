import { parseIpv6 } from "../addressing.ts";
import { DEFAULT_RUN_DIR } from "../constants.ts";
import { UsageError } from "../errors.ts";
import type { ParsedOptions } from "./parser.ts";
import type { CommandSpec } from "./spec.ts";

/** `re6st status` options. */
export const STATUS_SPEC: CommandSpec = {
  name: "status",
  summary: "show what a running node (or a registry's network) is doing",
  usage: "re6st status [--json] [--run DIR | --config FILE] [--wait WHAT --timeout S | " +
    "--route ADDR | --follow]",
  description:
    "Asks the node running on this machine, over its control socket in the run folder, what " +
    "it is doing: identity, certificate, registry, tunnels, babel neighbours and routes, child " +
    "processes and recent errors. --json prints the versioned JSON document for scripts. " +
    "--route shows the path Babel chose toward an address and the ones it did not; --follow " +
    "prints one JSON line per change until interrupted. With --registry, shows the whole " +
    "network as the registry sees it instead.",
  optionFiles: false,
  options: [
    { long: "json", dest: "json", type: "flag", help: "print the JSON status document" },
    {
      long: "run",
      short: "r",
      dest: "run",
      type: "string",
      path: true,
      metavar: "DIR",
      help: `run folder of the node [default: ${DEFAULT_RUN_DIR}, or the one in --config]`,
    },
    {
      long: "config",
      dest: "config",
      type: "string",
      path: true,
      metavar: "FILE",
      help: "the node's option file, to find its run folder like the node does",
    },
    {
      long: "wait",
      dest: "wait",
      type: "string",
      choices: ["connected", "registry"],
      metavar: "WHAT",
      help: "wait until the node has a tunnel and routes (connected) or reaches the " +
        "registry (registry); exit 0 then",
    },
    {
      long: "timeout",
      dest: "timeout",
      type: "number",
      min: 0,
      metavar: "S",
      default: 60,
      help: "how long --wait waits; with --registry, the time limit of each request",
    },
    {
      long: "registry",
      dest: "registry",
      type: "string",
      metavar: "URL",
      help: "show the network as this registry sees it (private methods: run it on the " +
        "registry host or an authorized origin)",
    },
    {
      long: "route",
      dest: "route",
      type: "string",
      metavar: "ADDR",
      help: "the route Babel installed toward this IPv6 address (next hop, metric, tunnel, " +
        "peer) and the alternatives it knows but did not install; exit 1 when it has none",
    },
    {
      long: "follow",
      dest: "follow",
      type: "flag",
      help: "print one JSON line per change (tunnel opened, established, retiring or closed; " +
        "peer added or lost; route gained, lost or changed; configuration version; node " +
        "state) until interrupted (exit 0) or the node stops (exit 3)",
    },
    {
      long: "dot",
      dest: "dot",
      type: "flag",
      help: "with --registry: print the topology as a Graphviz graph",
    },
  ],
  epilog: [
    "Exit codes:",
    "  0  the node answered and is healthy; --wait: the goal was reached;",
    "     --registry: the registry answered",
    "  1  the node is unhealthy, or answered late or unusably; --registry: the registry",
    "     could not be reached, gave an error, or cannot read its node's routes (then it",
    "     offers only its own node to newcomers)",
    "  2  usage error",
    "  3  no node answers on the control socket",
    "  4  permission denied on the control socket; --registry: the registry refused",
    "     (HTTP 403: this machine is not an authorized origin)",
    "--route: 1 when babeld has no route to the address. --follow: 0 when interrupted,",
    '3 when the node stopped (its last line is {"event":"node-stopping"}).',
    "--wait retries until --timeout, then exits with the code of its last try: 1 when the",
    "node answered without reaching the goal, 3 when nothing answered on the socket;",
    "permission denied ends it at once with 4.",
  ].join("\n"),
};

/** Options of `re6st status`, typed and checked. */
export interface StatusOptions {
  json: boolean;
  run?: string;
  config?: string;
  wait?: "connected" | "registry";
  timeout: number;
  registry?: string;
  dot: boolean;
  /** IPv6 address whose route to show. */
  route?: string;
  follow: boolean;
}

/** Checks and types parsed `re6st status` options. */
export function toStatusOptions(p: ParsedOptions): StatusOptions {
  if (p.dot && !p.registry) throw new UsageError("option --dot needs --registry");
  if (p.wait && p.registry) throw new UsageError("option --wait cannot be used with --registry");
  const modes = ["wait", "registry", "route", "follow"].filter((k) => p[k]);
  if (modes.length > 1) {
    throw new UsageError(`options ${modes.map((m) => `--${m}`).join(" and ")} exclude each other`);
  }
  if (p.route !== undefined) {
    try {
      parseIpv6(p.route as string);
    } catch {
      throw new UsageError(`option --route: "${p.route}" is not an IPv6 address`);
    }
  }
  return {
    json: p.json as boolean,
    run: p.run as string | undefined,
    config: p.config as string | undefined,
    wait: p.wait as StatusOptions["wait"],
    timeout: p.timeout as number,
    registry: p.registry as string | undefined,
    dot: p.dot as boolean,
    route: p.route as string | undefined,
    follow: p.follow as boolean,
  };
}
