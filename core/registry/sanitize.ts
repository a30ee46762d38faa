// Text from the network on its way to the registry's log and mbox: control characters (which
// could forge log lines or drive a terminal) are written as escapes.

import type { Logger } from "../log.ts";

// deno-lint-ignore no-control-regex -- control characters are what it looks for
const CONTROLS = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g;

/** `text` with C0 and C1 control characters, DEL and line separators as \xHH or \uHHHH. */
export function escapeControls(text: string): string {
  return text.replace(CONTROLS, (c) => {
    const n = c.charCodeAt(0);
    return n < 0x100 ? `\\x${n.toString(16).padStart(2, "0")}` : `\\u${n.toString(16)}`;
  });
}

/** A logger writing every line through escapeControls (children too). */
export function escapingLogger(log: Logger): Logger {
  return {
    error: (m) => log.error(escapeControls(m)),
    warn: (m) => log.warn(escapeControls(m)),
    info: (m) => log.info(escapeControls(m)),
    debug: (m) => log.debug(escapeControls(m)),
    trace: (m) => log.trace(escapeControls(m)),
    child: (p) => escapingLogger(log.child(p)),
  };
}
