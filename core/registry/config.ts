// Options of `re6st registry` (PROTOCOL.md §9.3) as a plain object, for code that starts a
// registry without a command line (tests, tools). REGISTRY_SPEC is the one source of their
// defaults and ranges: a config is checked and completed as the same command line would be.

import { describeError } from "../errors.ts";
import { parseTokens, type Token } from "../options/parser.ts";
import { REGISTRY_SPEC, type RegistryOptions, toRegistryOptions } from "../options/registry.ts";

/** A registry's options with every default filled in (anonymousPrefixLength 0 when unset). */
export type ResolvedRegistryConfig =
  & Omit<RegistryOptions, "config" | "anonymousPrefixLength">
  & { anonymousPrefixLength: number };

/**
 * `re6st registry` options, camelCase of the long options of §9.3; unset ones get the
 * defaults of REGISTRY_SPEC. `authorizedOrigin` adds to 127.0.0.1 and ::1. Unlike the command
 * line, `sameCountry` is accepted (a caller may inject a GeoIP reader).
 */
export type RegistryConfig =
  & Partial<Omit<ResolvedRegistryConfig, "ca" | "key">>
  & Pick<ResolvedRegistryConfig, "ca" | "key">;

/** A registry option is missing or has a value outside its range. */
export class RegistryConfigError extends Error {
  override name = "RegistryConfigError";
}

/** Fills in the defaults of REGISTRY_SPEC and checks values; throws RegistryConfigError. */
export function resolveRegistryConfig(c: RegistryConfig): ResolvedRegistryConfig {
  for (const [k, v] of [["ca", c.ca], ["key", c.key]]) {
    if (!v) throw new RegistryConfigError(`Missing --${k}`);
  }
  let o: RegistryOptions;
  try {
    o = toRegistryOptions(parseTokens(REGISTRY_SPEC, configTokens(c)));
  } catch (e) {
    throw new RegistryConfigError(`Invalid registry config: ${describeError(e)}`, {
      cause: e,
    });
  }
  const { config: _, ...resolved } = o;
  return {
    ...resolved,
    dh: o.dh || undefined,
    mailhost: o.mailhost || undefined,
    anonymousPrefixLength: o.anonymousPrefixLength ?? 0,
    authorizedOrigin: [...new Set(o.authorizedOrigin)],
    sameCountry: c.sameCountry ?? [],
  };
}

/** The command line that gives `c` (values attached, so none is mistaken for an option). */
function configTokens(c: RegistryConfig): Token[] {
  const tokens: Token[] = [];
  const values = c as Record<string, unknown>;
  for (const opt of REGISTRY_SPEC.options) {
    const v = values[opt.dest];
    if (v === undefined || opt.dest === "sameCountry") continue;
    const name = `--${opt.long}`;
    if (opt.type === "flag") {
      if (v) tokens.push({ text: name });
    } else if (opt.dest === "ipv4") {
      const { network, sublen } = v as { network: string; sublen: number };
      tokens.push({ text: `${name}=${network}` }, { text: String(sublen) });
    } else if (opt.append) {
      for (const x of v as unknown[]) tokens.push({ text: `${name}=${x}` });
    } else {
      tokens.push({ text: `${name}=${v}` });
    }
  }
  return tokens;
}
