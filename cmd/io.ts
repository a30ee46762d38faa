/** What a subcommand may use to talk to the person or script that ran it. */
export interface Io {
  /** Writes one line (a newline is added) to standard output. */
  out(text: string): void;
  /** Writes one line (a newline is added) to standard error. */
  err(text: string): void;
  /** Asks a question on the terminal; null when there is no terminal or input ended. */
  prompt(question: string): Promise<string | null>;
}

/** The Io of the real process: standard streams and the terminal. */
export function processIo(): Io {
  const enc = new TextEncoder();
  return {
    out: (text) => Deno.stdout.writeSync(enc.encode(text + "\n")),
    err: (text) => Deno.stderr.writeSync(enc.encode(text + "\n")),
    prompt: (question) => {
      if (!Deno.stdin.isTerminal()) return Promise.resolve(null);
      return Promise.resolve(globalThis.prompt(question));
    },
  };
}

/** An Io that records everything, for tests. */
export function recordingIo(answers: string[] = []): Io & { stdout: string[]; stderr: string[] } {
  const stdout: string[] = [];
  const stderr: string[] = [];
  return {
    stdout,
    stderr,
    out: (text) => stdout.push(text),
    err: (text) => stderr.push(text),
    prompt: (question) => {
      stdout.push(question);
      return Promise.resolve(answers.length ? answers.shift()! : null);
    },
  };
}

export { UsageError } from "../core/errors.ts";
