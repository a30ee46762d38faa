/** How one command-line option is read (an argparse-compatible subset). */
export interface OptionSpec {
  /** Long name without dashes, e.g. "main-interface". */
  long: string;
  /** Short name without dash, e.g. "I". */
  short?: string;
  /** Key in the parsed result (camelCase). */
  dest: string;
  /** flag: no value; string/int/number: one value each; nargs > 1 gives a tuple of strings. */
  type: "flag" | "string" | "int" | "number";
  /** Number of values taken by the option (default 1; 0 for flags). */
  nargs?: number;
  /** Values accumulate over repetitions instead of the last one winning. */
  append?: boolean;
  /** Allowed values. */
  choices?: readonly string[];
  /** Inclusive bounds for numbers. */
  min?: number;
  max?: number;
  /** The value is a path: relative paths read from an option file are taken from its folder. */
  path?: boolean;
  /** Name(s) of the value(s) in --help. */
  metavar?: string;
  /** Default shown in --help and used when the option is absent. */
  default?: unknown;
  required?: boolean;
  help: string;
  /** Hidden from --help (obsolete options kept for compatibility). */
  hidden?: boolean;
}

/** A subcommand's option table and the words of its --help. */
export interface CommandSpec {
  name: string;
  summary: string;
  usage: string;
  description: string;
  options: readonly OptionSpec[];
  /** Whether `@FILE` arguments and `--config FILE` are accepted. */
  optionFiles: boolean;
  /** Text printed after the option list. */
  epilog?: string;
}
