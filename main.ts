#!/usr/bin/env -S deno run -A
// re6st: a resilient, scalable IPv6 overlay network. Entry point: dispatch to cmd/.
import { type Io, processIo, UsageError } from "./cmd/io.ts";
import { SOFTWARE_VERSION } from "./core/constants.ts";
import { describeError } from "./core/errors.ts";
import { ADMIN_SPEC } from "./core/options/admin.ts";
import { CONF_SPEC } from "./core/options/conf.ts";
import { NODE_SPEC } from "./core/options/node.ts";
import { REGISTRY_SPEC } from "./core/options/registry.ts";
import { STATUS_SPEC } from "./core/options/status.ts";

/** A subcommand; its module is loaded only when it runs, so a node loads no registry code. */
interface Command {
  summary: string;
  load(): Promise<{ run(args: string[], io: Io): Promise<number> }>;
  hidden?: boolean;
}

/** The subcommands, by their first word. */
export const COMMANDS: Record<string, Command> = {
  registry: { summary: REGISTRY_SPEC.summary, load: () => import("./cmd/registry.ts") },
  conf: { summary: CONF_SPEC.summary, load: () => import("./cmd/conf.ts") },
  node: { summary: NODE_SPEC.summary, load: () => import("./cmd/node.ts") },
  status: { summary: STATUS_SPEC.summary, load: () => import("./cmd/status.ts") },
  admin: { summary: ADMIN_SPEC.summary, load: () => import("./cmd/admin.ts") },
  "ovpn-hook": {
    summary: "internal: OpenVPN hook (run by OpenVPN, not by people)",
    hidden: true,
    load: () => import("./cmd/ovpn_hook.ts"),
  },
};

function usage(): string {
  const lines = [
    "Usage: re6st <command> [options]",
    "",
    "A resilient, scalable IPv6 overlay network (re6st protocol version 10).",
    "",
    "Commands:",
  ];
  for (const [name, cmd] of Object.entries(COMMANDS)) {
    if (!cmd.hidden) lines.push(`  ${name.padEnd(10)}${cmd.summary}`);
  }
  lines.push(
    "",
    "Options:",
    "  -h, --help     show this help",
    "  -V, --version  print the version",
    "",
    "Run 're6st <command> --help' for the options of a command.",
  );
  return lines.join("\n");
}

/** Runs the program with `argv`; returns the process exit code. */
export async function main(argv: string[], io: Io = processIo()): Promise<number> {
  const [first, ...rest] = argv;
  if (first === undefined || first === "-h" || first === "--help" || first === "help") {
    io.out(usage());
    return first === undefined ? 2 : 0;
  }
  if (first === "-V" || first === "--version") {
    io.out(`re6st ${SOFTWARE_VERSION} (protocol 10)`);
    return 0;
  }
  const cmd = COMMANDS[first];
  if (!cmd) {
    io.err(`re6st: unknown command "${first}" (try: re6st --help)`);
    return 2;
  }
  try {
    return await (await cmd.load()).run(rest, io);
  } catch (e) {
    io.err(`re6st ${first}: ${describeError(e)}`);
    return e instanceof UsageError ? 2 : 1;
  }
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
