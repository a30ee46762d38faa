import { allOptions } from "./parser.ts";
import type { CommandSpec, OptionSpec } from "./spec.ts";

function flags(o: OptionSpec): string {
  const meta = o.type === "flag" ? "" : " " + (o.metavar ?? o.dest.toUpperCase());
  const long = `--${o.long}${meta}`;
  return o.short ? `-${o.short}, ${long}` : `    ${long}`;
}

function wrap(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = "";
  for (const word of text.split(/\s+/)) {
    if (line && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else {
      line = line ? `${line} ${word}` : word;
    }
  }
  if (line) lines.push(line);
  return lines;
}

/** Renders the complete --help text of a subcommand from its option table. */
export function renderHelp(spec: CommandSpec): string {
  const out: string[] = [`Usage: ${spec.usage}`, "", ...wrap(spec.description, 78), ""];
  out.push("Options:");
  const opts = allOptions(spec).filter((o) => !o.hidden);
  const col = Math.min(34, Math.max(...opts.map((o) => flags(o).length)) + 4);
  for (const o of opts) {
    let help = o.help;
    if (o.required) help += " (required)";
    if (o.append) help += " (repeatable)";
    if (o.choices) help += ` (one of: ${o.choices.join(", ")})`;
    if (o.default !== undefined && !(Array.isArray(o.default) && o.default.length === 0)) {
      const d = Array.isArray(o.default) ? o.default.join(", ") : String(o.default);
      help += ` [default: ${d}]`;
    }
    const left = "  " + flags(o);
    const text = wrap(help, 78 - col);
    if (left.length + 2 > col) {
      out.push(left);
      for (const t of text) out.push(" ".repeat(col) + t);
    } else {
      out.push(left.padEnd(col) + (text[0] ?? ""));
      for (const t of text.slice(1)) out.push(" ".repeat(col) + t);
    }
  }
  if (spec.epilog) out.push("", spec.epilog.trimEnd());
  return out.join("\n");
}
