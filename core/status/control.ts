// Answers on the node's control socket (platform/control.ts): one JSON value, or a stream of
// JSON lines that ends when the node or the client does (`re6st status --follow`).

const STREAM = Symbol("control stream");

/** A stream of lines, each one JSON value. */
export interface ControlStream {
  readonly [STREAM]: true;
  readonly lines: AsyncIterable<unknown>;
}

/** What a control request gets back: a value, or a stream of them. */
export type ControlReply = unknown;

/** Marks `lines` as a stream of answers rather than one answer. */
export function controlStream(lines: AsyncIterable<unknown>): ControlStream {
  return { [STREAM]: true, lines };
}

/** Whether a reply is a stream. */
export function isControlStream(reply: unknown): reply is ControlStream {
  return typeof reply === "object" && reply !== null && STREAM in reply;
}
