// Command-line options of the network benchmarks: pairs of `--name N`, N a positive integer.

/**
 * Reads `--name N` pairs into `into` (`keys` maps each option to its field); throws an Error
 * naming an unknown option or a bad value.
 */
export function readCounts<T extends { [K in keyof T]: number }>(
  argv: string[],
  keys: Record<string, keyof T>,
  into: T,
): T {
  for (let i = 0; i < argv.length; i += 2) {
    const k = keys[argv[i]];
    const n = Number(argv[i + 1]);
    if (!k) throw new Error(`unknown option ${argv[i]} (--help lists them)`);
    if (!Number.isInteger(n) || n <= 0) throw new Error(`${argv[i]}: bad value ${argv[i + 1]}`);
    into[k] = n as T[keyof T];
  }
  return into;
}

/**
 * The options of a root benchmark: prints `usage` for --help, exits 1 without root and 2 with
 * one line on a bad option.
 */
export function benchArgs<A>(script: string, usage: string, parse: (argv: string[]) => A): A {
  if (Deno.args.includes("--help")) {
    console.log(usage);
    Deno.exit(0);
  }
  if (Deno.uid() !== 0) {
    console.error(`${script}: must run as root (network namespaces)`);
    Deno.exit(1);
  }
  try {
    return parse(Deno.args);
  } catch (e) {
    console.error(`${script}: ${(e as Error).message}`);
    Deno.exit(2);
  }
}
