import { isAbsolute, join } from "node:path";
import { describeError, UsageError } from "../errors.ts";
import type { CommandSpec, OptionSpec } from "./spec.ts";
import { shellSplit } from "./shell.ts";

/** One command-line word and, when it came from an option file, where. */
export interface Token {
  text: string;
  /** "FILE:LINE" for words read from an option file. */
  origin?: string;
  /** Folder of that option file, to resolve relative paths. */
  dir?: string;
}

/** What option-file expansion needs from the outside world. */
export interface FileReader {
  readTextFile(path: string): string;
  cwd: string;
}

/** The parsed options: dest → value (string, number, boolean, tuple or list). */
export type ParsedOptions = Record<string, unknown> & { help: boolean };

const HELP: OptionSpec = {
  long: "help",
  short: "h",
  dest: "help",
  type: "flag",
  help: "show this help and exit",
};

/** All options of a command, including the implicit --help and --config. */
export function allOptions(spec: CommandSpec): OptionSpec[] {
  const extra: OptionSpec[] = [HELP];
  if (spec.optionFiles) {
    extra.push({
      long: "config",
      dest: "config",
      type: "string",
      path: true,
      metavar: "FILE",
      help: "read options from FILE (same format as @FILE); the command line wins",
    });
  }
  return [...spec.options, ...extra];
}

function where(tok: Token | undefined): string {
  return tok?.origin ? `${tok.origin}: ` : "";
}

function findLong(opts: OptionSpec[], name: string, tok: Token): OptionSpec {
  const exact = opts.find((o) => o.long === name);
  if (exact) return exact;
  const matches = opts.filter((o) => o.long.startsWith(name));
  if (matches.length === 1) return matches[0];
  if (matches.length > 1) {
    const names = matches.map((o) => "--" + o.long).join(", ");
    throw new UsageError(`${where(tok)}ambiguous option --${name} (could be ${names})`);
  }
  throw new UsageError(`${where(tok)}unknown option --${name}`);
}

/** Turns the lines of an option file into words (PROTOCOL.md §9.1). */
export function optionFileTokens(
  spec: CommandSpec,
  path: string,
  reader: FileReader,
  depth = 0,
): Token[] {
  if (depth > 8) throw new UsageError(`${path}: option files nested too deeply`);
  const full = isAbsolute(path) ? path : join(reader.cwd, path);
  let text: string;
  try {
    text = reader.readTextFile(full);
  } catch (e) {
    const why = describeError(e);
    throw new UsageError(`cannot read option file ${path}: ${why}`, { cause: e });
  }
  const dir = full.slice(0, full.lastIndexOf("/")) || "/";
  const opts = allOptions(spec);
  const out: Token[] = [];
  text.split("\n").forEach((raw, index) => {
    const origin = `${path}:${index + 1}`;
    const line = raw.replace(/\r$/, "");
    const hash = line.indexOf("#");
    if ((hash < 0 ? line : line.slice(0, hash)).trim() === "") return;
    if (line.startsWith("@")) {
      out.push(...optionFileTokens(spec, line.slice(1).trim(), reader, depth + 1));
      return;
    }
    let words: string[];
    try {
      words = shellSplit(line);
    } catch (e) {
      throw new UsageError(`${origin}: ${(e as Error).message}`);
    }
    if (words.length === 0) return;
    const [first, ...rest] = words;
    const known = opts.some((o) => o.long === first);
    out.push({ text: known ? `--${first}` : `-${first}`, origin, dir });
    for (const w of rest) out.push({ text: w, origin, dir });
  });
  return out;
}

/** Expands `@FILE` in place and `--config FILE` in front (so the command line wins). */
export function expandArgs(spec: CommandSpec, argv: string[], reader: FileReader): Token[] {
  const front: Token[] = [];
  const rest: Token[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (spec.optionFiles && a.startsWith("@") && a.length > 1) {
      rest.push(...optionFileTokens(spec, a.slice(1), reader));
    } else if (spec.optionFiles && (a === "--config" || a.startsWith("--config="))) {
      const file = a.includes("=") ? a.slice(a.indexOf("=") + 1) : argv[++i];
      if (file === undefined || file === "") {
        throw new UsageError("option --config expects a file name");
      }
      front.push(...optionFileTokens(spec, file, reader));
      rest.push({ text: "--config" }, { text: file, dir: reader.cwd });
    } else {
      // Relative paths on the command line are relative to the working directory.
      rest.push({ text: a, dir: reader.cwd });
    }
  }
  return [...front, ...rest];
}

function looksLikeOption(text: string): boolean {
  return text.length > 1 && text.startsWith("-") && !/^-\d+(\.\d+)?$/.test(text);
}

function convert(opt: OptionSpec, tok: Token, value: string): unknown {
  const name = `--${opt.long}`;
  if (opt.choices && !opt.choices.includes(value)) {
    throw new UsageError(
      `${where(tok)}option ${name}: invalid choice "${value}" (choose from ${
        opt.choices.join(", ")
      })`,
    );
  }
  if (opt.type === "int" || opt.type === "number") {
    const ok = opt.type === "int" ? /^-?\d+$/.test(value) : /^-?(\d+\.?\d*|\.\d+)$/.test(value);
    if (!ok) {
      const what = opt.type === "int" ? "integer" : "number";
      throw new UsageError(`${where(tok)}option ${name}: invalid ${what} "${value}"`);
    }
    const n = Number(value);
    if ((opt.min !== undefined && n < opt.min) || (opt.max !== undefined && n > opt.max)) {
      const range = `${opt.min ?? "-∞"}..${opt.max ?? "∞"}`;
      throw new UsageError(`${where(tok)}option ${name}: ${value} is out of range ${range}`);
    }
    return n;
  }
  if (opt.path && tok.dir && value !== "" && !isAbsolute(value) && !value.includes("://")) {
    return join(tok.dir, value);
  }
  return value;
}

/** Parses words into options, argparse-style: abbreviations, -xVALUE, append, nargs. */
export function parseTokens(spec: CommandSpec, tokens: Token[]): ParsedOptions {
  const opts = allOptions(spec);
  const result: Record<string, unknown> = {};
  const seen = new Set<string>();
  for (let i = 0; i < tokens.length; i++) {
    const tok = tokens[i];
    const t = tok.text;
    let opt: OptionSpec;
    let attached: string | undefined;
    if (t.startsWith("--") && t.length > 2) {
      const eq = t.indexOf("=");
      const name = eq < 0 ? t.slice(2) : t.slice(2, eq);
      if (eq >= 0) attached = t.slice(eq + 1);
      opt = findLong(opts, name, tok);
    } else if (t.startsWith("-") && t.length > 1 && t !== "--") {
      const found = opts.find((o) => o.short === t[1]);
      if (!found) throw new UsageError(`${where(tok)}unknown option -${t[1]}`);
      opt = found;
      if (t.length > 2) {
        if (opt.type === "flag") {
          throw new UsageError(`${where(tok)}option -${t[1]} takes no value (got "${t}")`);
        }
        attached = t.slice(2);
      }
    } else {
      throw new UsageError(`${where(tok)}unexpected argument "${t}"`);
    }
    const name = `--${opt.long}`;
    seen.add(opt.dest);
    if (opt.type === "flag") {
      if (attached !== undefined) {
        throw new UsageError(`${where(tok)}option ${name} takes no value`);
      }
      result[opt.dest] = true;
      continue;
    }
    const n = opt.nargs ?? 1;
    const values: string[] = [];
    if (attached !== undefined) values.push(attached);
    while (values.length < n) {
      const next = tokens[i + 1];
      if (next === undefined || looksLikeOption(next.text)) {
        const what = n === 1 ? "a value" : `${n} values`;
        throw new UsageError(`${where(tok)}option ${name} expects ${what}`);
      }
      values.push(next.text);
      i++;
    }
    const converted = n === 1
      ? convert(opt, tok, values[0])
      : values.map((v, k) => k === 0 ? convert(opt, tok, v) : v);
    if (opt.append) {
      const list = (result[opt.dest] as unknown[] | undefined) ?? [];
      list.push(converted);
      result[opt.dest] = list;
    } else {
      result[opt.dest] = converted;
    }
  }
  for (const opt of opts) {
    if (seen.has(opt.dest)) continue;
    if (opt.type === "flag") result[opt.dest] = false;
    else if (opt.append) result[opt.dest] = opt.default === undefined ? [] : opt.default;
    else if (opt.default !== undefined) result[opt.dest] = opt.default;
  }
  // Like argparse's help and version actions: asked for, they win over missing options.
  if (!result.help && !result.version) {
    for (const opt of opts) {
      if (opt.required && !seen.has(opt.dest)) {
        throw new UsageError(`missing required option --${opt.long}`);
      }
    }
  }
  return result as ParsedOptions;
}

/** Expands option files and parses: the whole command line of one subcommand. */
export function parseCommandLine(
  spec: CommandSpec,
  argv: string[],
  reader: FileReader,
): ParsedOptions {
  return parseTokens(spec, expandArgs(spec, argv, reader));
}
