import { DEFAULT_RUN_DIR, runFile } from "../core/constants.ts";
import { renderHelp } from "../core/options/help.ts";
import { NODE_SPEC } from "../core/options/node.ts";
import { parseCommandLine } from "../core/options/parser.ts";
import { STATUS_SPEC, type StatusOptions, toStatusOptions } from "../core/options/status.ts";
import {
  problems,
  reached,
  STATUS_SCHEMA_VERSION,
  type StatusDocument,
} from "../core/status/document.ts";
import { renderStatus } from "../core/status/render.ts";
import { renderRoute, type RouteAnswer } from "../core/status/route.ts";
import { ControlError, followControl, queryControl } from "../platform/control.ts";
import { parseOrHelp, processFiles } from "./common.ts";
import type { Io } from "./io.ts";

/** One line for `re6st --help`. */
export const summary = STATUS_SPEC.summary;
/** The complete help of `re6st status`. */
export const help = renderHelp(STATUS_SPEC);

/** Exit codes of `re6st status` (documented in --help and README). */
export const EXIT = { ok: 0, unhealthy: 1, usage: 2, notRunning: 3, permission: 4 } as const;

/** Finds the node's run folder: --run, else the node's option file, else the default. */
export function runDirOf(opts: StatusOptions): string {
  if (opts.run) return opts.run;
  if (opts.config) {
    // Read the node's own option file the way the node does, without its required options.
    const spec = {
      ...NODE_SPEC,
      options: NODE_SPEC.options.map((o) => ({ ...o, required: false })),
    };
    const parsed = parseCommandLine(spec, ["--config", opts.config], processFiles);
    return parsed.run as string;
  }
  return DEFAULT_RUN_DIR;
}

async function fetchStatus(socket: string): Promise<StatusDocument> {
  const answer = await queryControl(socket, { request: "status" });
  const doc = answer as StatusDocument & { error?: string };
  if (doc.error) throw new ControlError(`node refused the request: ${doc.error}`, "protocol");
  if (doc.schema !== STATUS_SCHEMA_VERSION) {
    throw new ControlError(
      `node speaks status schema ${doc.schema}, this program ${STATUS_SCHEMA_VERSION}`,
      "protocol",
    );
  }
  return doc;
}

function exitFor(e: ControlError): number {
  return e.reason === "permission"
    ? EXIT.permission
    : e.reason === "not-running"
    ? EXIT.notRunning
    : EXIT.unhealthy;
}

async function waitFor(socket: string, opts: StatusOptions, io: Io): Promise<number> {
  const goal = opts.wait!;
  const deadline = Date.now() + opts.timeout * 1000;
  let missing = "node not running";
  let code: number = EXIT.notRunning;
  while (true) {
    try {
      const doc = await fetchStatus(socket);
      const r = reached(doc, goal);
      if (r.ok) {
        if (opts.json) io.out(JSON.stringify(doc, null, 2));
        else io.out(`re6st status: ${goal} (node ${doc.identity.cn})`);
        return EXIT.ok;
      }
      missing = r.missing;
      code = EXIT.unhealthy;
    } catch (e) {
      if (!(e instanceof ControlError)) throw e;
      if (e.reason === "permission") {
        io.err(`re6st status: ${e.message}`);
        return EXIT.permission;
      }
      missing = e.message;
      code = exitFor(e);
    }
    if (Date.now() >= deadline) break;
    await new Promise((r) => setTimeout(r, Math.min(1000, Math.max(0, deadline - Date.now()))));
  }
  io.err(`re6st status: not ${goal} after ${opts.timeout}s: ${missing}`);
  return code;
}

/** `--route ADDR`: Babel's path toward an address, from the node. */
async function showRoute(socket: string, opts: StatusOptions, io: Io): Promise<number> {
  const answer = await queryControl(socket, { request: "route", address: opts.route });
  const refused = (answer as { error?: string }).error;
  if (refused) throw new ControlError(`node refused the request: ${refused}`, "protocol");
  const route = answer as RouteAnswer;
  io.out(opts.json ? JSON.stringify(route, null, 2) : renderRoute(route));
  return route.route || route.local ? EXIT.ok : EXIT.unhealthy;
}

/** `--follow`: one JSON line per change until SIGINT/SIGTERM (0) or the node stops (3). */
async function follow(socket: string, io: Io): Promise<number> {
  const stop = new AbortController();
  const signals = ["SIGINT", "SIGTERM"] as const;
  const onSignal = () => stop.abort();
  for (const sig of signals) Deno.addSignalListener(sig, onSignal);
  try {
    const how = await followControl(
      socket,
      { request: "follow" },
      (line) => io.out(JSON.stringify(line)),
      stop.signal,
    );
    return how === "interrupted" ? EXIT.ok : EXIT.notRunning;
  } finally {
    for (const sig of signals) Deno.removeSignalListener(sig, onSignal);
  }
}

/** Runs `re6st status`; returns the exit code. */
export async function run(args: string[], io: Io): Promise<number> {
  const parsed = parseOrHelp(STATUS_SPEC, args, io);
  if (!parsed) return 0;
  const opts = toStatusOptions(parsed);
  if (opts.registry) {
    const { registryStatus } = await import("./status_registry.ts");
    return registryStatus(opts, io);
  }
  const socket = runFile(runDirOf(opts), "control");
  if (opts.wait) return waitFor(socket, opts, io);
  if (opts.route || opts.follow) {
    try {
      return await (opts.route ? showRoute(socket, opts, io) : follow(socket, io));
    } catch (e) {
      if (!(e instanceof ControlError)) throw e;
      io.err(`re6st status: ${e.message}`);
      return exitFor(e);
    }
  }
  let doc: StatusDocument;
  try {
    doc = await fetchStatus(socket);
  } catch (e) {
    if (!(e instanceof ControlError)) throw e;
    io.err(`re6st status: ${e.message}`);
    return exitFor(e);
  }
  io.out(opts.json ? JSON.stringify(doc, null, 2) : renderStatus(doc));
  return problems(doc).length ? EXIT.unhealthy : EXIT.ok;
}
