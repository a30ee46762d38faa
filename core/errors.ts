/** Raised for a bad command line or option file; main.ts prints it and exits with 2. */
export class UsageError extends Error {
  override name = "UsageError";
}

/**
 * One line saying what failed and why: the error's message, then the message of each `cause`
 * in turn, skipping those the text already contains. An error with `causeInMessage: true`
 * already says why in its own words: its causes are not added.
 */
export function describeError(e: unknown): string {
  let text = oneLine(messageOf(e));
  const seen = new Set<unknown>([e]);
  const stop = (x: unknown) =>
    typeof x === "object" && x !== null && (x as { causeInMessage?: boolean }).causeInMessage;
  if (stop(e)) return text;
  for (let c = causeOf(e); c !== undefined && c !== null && !seen.has(c); c = causeOf(c)) {
    seen.add(c);
    const m = oneLine(messageOf(c));
    if (m !== "" && !text.includes(m)) text = text === "" ? m : `${text}: ${m}`;
    if (stop(c)) break;
  }
  return text;
}

function messageOf(e: unknown): string {
  if (e instanceof Error) return e.message || e.name;
  if (typeof e === "object" && e !== null && "message" in e) return String(e.message);
  return String(e);
}

function causeOf(e: unknown): unknown {
  return typeof e === "object" && e !== null && "cause" in e ? e.cause : undefined;
}

function oneLine(text: string): string {
  return text.replace(/\s*\n\s*/g, " ").trim();
}
