import assert from "node:assert/strict";
import { parseHttpResponse } from "../../platform/upnp.ts";

const bytes = (s: string) => new TextEncoder().encode(s);

Deno.test("an HTTP answer is cut at its Content-Length, counted in bytes", () => {
  const r = parseHttpResponse(bytes("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nélanXYZ"));
  assert.deepEqual(r, { status: 200, body: "élan" });
});

Deno.test("a chunked HTTP answer is put back together", () => {
  const r = parseHttpResponse(
    bytes(
      "HTTP/1.1 500 Error\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n<a>x\r\n5;ext=1\r\n</a>!\r\n0\r\n\r\n",
    ),
  );
  assert.deepEqual(r, { status: 500, body: "<a>x</a>!" });
});

Deno.test("an answer without length runs to the end of the connection", () => {
  assert.deepEqual(parseHttpResponse(bytes("HTTP/1.0 404 Not Found\r\nServer: x\r\n\r\nnope")), {
    status: 404,
    body: "nope",
  });
});

Deno.test("what is not a whole HTTP answer is refused with the reason", () => {
  assert.throws(
    () => parseHttpResponse(bytes("HTTP/1.1 200 OK\r\nContent-")),
    /no complete HTTP header/,
  );
  assert.throws(() => parseHttpResponse(bytes("SSH-2.0-OpenSSH\r\n\r\n")), /not an HTTP answer/);
  assert.throws(
    () => parseHttpResponse(bytes("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n9\r\nabc")),
    /truncated chunked HTTP body/,
  );
});
