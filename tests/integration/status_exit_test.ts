// Exit codes of `re6st status` as documented in its --help, README and docs/status.md.
import assert from "node:assert/strict";
import { recordingIo } from "../../cmd/io.ts";
import { main } from "../../main.ts";

Deno.test("status --wait exits 3 when no node ever answered by the deadline", async () => {
  const run = Deno.makeTempDirSync({ prefix: "re6st-status-exit-" });
  try {
    const io = recordingIo();
    const code = await main(["status", "--run", run, "--wait", "registry", "--timeout", "0"], io);
    assert.equal(code, 3);
    assert.equal(io.stderr.length, 1);
    assert.match(io.stderr[0], /not registry after 0s: no node is running/);
  } finally {
    Deno.removeSync(run, { recursive: true });
  }
});
