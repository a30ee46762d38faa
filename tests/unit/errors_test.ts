import assert from "node:assert/strict";
import { describeError } from "../../core/errors.ts";

Deno.test("an error with nested causes reads as one line ending with the innermost reason", () => {
  const os = new Deno.errors.AddrInUse("Address already in use (os error 98)");
  const bind = new Error("Cannot listen on 127.0.0.1:8080", { cause: os });
  const start = new Error("Cannot start the registry", { cause: bind });
  assert.equal(
    describeError(start),
    "Cannot start the registry: Cannot listen on 127.0.0.1:8080: " +
      "Address already in use (os error 98)",
  );
});

Deno.test("a cause whose text the message already holds is not repeated", () => {
  const inner = new Error("No such file or directory (os error 2)");
  const outer = new Error(`Cannot read "/etc/x": ${inner.message}`, { cause: inner });
  assert.equal(
    describeError(outer),
    'Cannot read "/etc/x": No such file or directory (os error 2)',
  );
});

Deno.test("non-Error values, empty messages, multi-line texts and cause loops give one line", () => {
  assert.equal(describeError("plain text"), "plain text");
  assert.equal(describeError(42), "42");
  assert.equal(describeError(new Error("", { cause: "disk full" })), "Error: disk full");
  assert.equal(describeError(new Error("first\n  second")), "first second");
  const loop = new Error("outer");
  const inner = new Error("inner", { cause: loop });
  loop.cause = inner;
  assert.equal(describeError(loop), "outer: inner");
  assert.equal(
    describeError({ message: "like an error", cause: { message: "why" } }),
    "like an error: why",
  );
});

Deno.test("an error that already says why in its own words does not repeat its causes", () => {
  const inner = new Error("No such file or directory (os error 2): readfile '/x'");
  const outer = Object.assign(
    new Error('Cannot load certificate "/x": no such file', {
      cause: inner,
    }),
    { causeInMessage: true },
  );
  assert.equal(describeError(outer), 'Cannot load certificate "/x": no such file');
  const wrapped = new Error("Cannot start the node", { cause: outer });
  assert.equal(
    describeError(wrapped),
    'Cannot start the node: Cannot load certificate "/x": no such file',
  );
});
