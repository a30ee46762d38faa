// scripts/smoke against this source tree, without its network-namespace part (the suite runs
// tests/netns/two_nodes_test.ts itself): --version, a registry and `re6st conf` on loopback.
// The release workflow runs the whole script against each built binary.
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";

const SMOKE = fileURLToPath(new URL("../../scripts/smoke", import.meta.url));

Deno.test("scripts/smoke passes against the source tree", async () => {
  const r = await new Deno.Command(SMOKE, {
    args: ["--no-netns"],
    env: { RE6ST_BIN: "" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const err = new TextDecoder().decode(r.stderr);
  assert.equal(r.code, 0, err);
  assert.equal(new TextDecoder().decode(r.stdout), "smoke: ok\n");
  assert.match(err, /smoke: testing the source tree /);
  assert.match(err, /smoke: enrolled: Your subnet: 2001:db8:42::\/64 /);
});

Deno.test("scripts/smoke fails with one line when the program is not there", async () => {
  const r = await new Deno.Command(SMOKE, {
    args: ["--no-netns", "/nonexistent/re6st"],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(r.code, 1);
  assert.equal(
    new TextDecoder().decode(r.stderr).trim(),
    "smoke: FAILED: /nonexistent/re6st is not an executable file",
  );
});
