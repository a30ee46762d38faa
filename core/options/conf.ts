import { UsageError } from "../errors.ts";
import type { ParsedOptions } from "./parser.ts";
import type { CommandSpec } from "./spec.ts";

/** `re6st conf` options (PROTOCOL.md §9.4). */
export const CONF_SPEC: CommandSpec = {
  name: "conf",
  summary: "enroll this machine: get a certificate from a registry",
  usage: "re6st conf --registry URL [--anonymous | --email ADDR | --token TOKEN] [options]",
  description: "Enrolls a machine in a re6st network: fetches the CA from the registry (checking " +
    "its fingerprint), makes a key and a certificate request, gets a certificate by e-mail " +
    "token or anonymously, and writes ca.crt, cert.crt, cert.key and a sample re6stnet.conf " +
    "in the working folder. An existing cert.key is reused; a failed run changes no file.",
  optionFiles: false,
  options: [
    {
      long: "registry",
      dest: "registry",
      type: "string",
      metavar: "URL",
      required: true,
      help: "registry URL",
    },
    {
      long: "fingerprint",
      dest: "fingerprint",
      type: "string",
      metavar: "ALG:HEX",
      help: "expected hash of the CA certificate (DER), e.g. sha256:0123…; without it a " +
        "warning is printed",
    },
    {
      long: "is-needed",
      dest: "isNeeded",
      type: "flag",
      help: "only check whether re6st is needed here: exit 1 if this host already has a " +
        "route to the network through a re6st address, 0 otherwise",
    },
    { long: "ca-only", dest: "caOnly", type: "flag", help: "only write ca.crt" },
    {
      long: "dir",
      short: "d",
      dest: "dir",
      type: "string",
      path: true,
      metavar: "DIR",
      default: ".",
      help: "folder for the files",
    },
    {
      long: "req",
      short: "r",
      dest: "req",
      type: "string",
      nargs: 2,
      append: true,
      metavar: "KEY VALUE",
      help: "extra subject attribute of the certificate request, e.g. -r O Example " +
        "(CN and serial are reserved)",
    },
    {
      long: "email",
      dest: "email",
      type: "string",
      metavar: "ADDR",
      help: "e-mail address to which the registry sends a token (asked if needed)",
    },
    {
      long: "token",
      dest: "token",
      type: "string",
      metavar: "TOKEN",
      help: "token already received by e-mail",
    },
    {
      long: "anonymous",
      dest: "anonymous",
      type: "flag",
      help: "register anonymously (if the registry allows it)",
    },
    {
      long: "location",
      dest: "location",
      type: "string",
      metavar: "CC,CONT",
      help: "country and continent codes sent to the registry (used when it has GeoIP); " +
        "also written as 'country CC' in re6stnet.conf",
    },
  ],
};

/** Options of `re6st conf`, typed and checked. */
export interface ConfOptions {
  registry: string;
  fingerprint?: string;
  isNeeded: boolean;
  caOnly: boolean;
  dir: string;
  req: [string, string][];
  email?: string;
  token?: string;
  anonymous: boolean;
  location?: string;
}

/** Checks and types parsed `re6st conf` options. */
export function toConfOptions(p: ParsedOptions): ConfOptions {
  const req = p.req as [string, string][];
  for (const [k] of req) {
    if (k === "CN" || k === "serial" || k === "serialNumber") {
      throw new UsageError(`option --req: attribute ${k} is reserved`);
    }
  }
  if (p.anonymous && (p.email !== undefined || p.token !== undefined)) {
    throw new UsageError("option --anonymous cannot be combined with --email or --token");
  }
  if (p.fingerprint !== undefined && !/^[\w-]+:[0-9a-fA-F]+$/.test(p.fingerprint as string)) {
    throw new UsageError(`option --fingerprint: expected ALG:HEX, got "${p.fingerprint}"`);
  }
  if (p.location !== undefined && !/^[A-Za-z*]{1,2},[A-Za-z*]{1,2}$/.test(p.location as string)) {
    throw new UsageError(`option --location: expected CC,CONT (e.g. FR,EU), got "${p.location}"`);
  }
  return {
    registry: p.registry as string,
    fingerprint: p.fingerprint as string | undefined,
    isNeeded: p.isNeeded as boolean,
    caOnly: p.caOnly as boolean,
    dir: p.dir as string,
    req,
    email: p.email as string | undefined,
    token: p.token as string | undefined,
    anonymous: p.anonymous as boolean,
    location: p.location as string | undefined,
  };
}
