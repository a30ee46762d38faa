// The node's file system seam on a real mount point: systemd's RuntimeDirectory= makes the run
// folder one, which cannot be removed; the node's teardown then empties it instead.
import assert from "node:assert/strict";
import { realFiles } from "../../platform/node_parts.ts";
import { createRunner } from "../../platform/runner.ts";
import { isRoot } from "./lab.ts";

Deno.test({
  name: "removing a run folder that is a mount point empties it",
  ignore: !isRoot,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "r6-mount-" });
    const runner = createRunner();
    let mounted = false;
    try {
      await runner.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", dir]);
      mounted = true;
      await Deno.writeTextFile(`${dir}/control.sock`, "");
      await Deno.mkdir(`${dir}/sub`);
      await Deno.writeTextFile(`${dir}/sub/x`, "x");
      await realFiles.remove(dir);
      assert.deepEqual(await Array.fromAsync(Deno.readDir(dir)), [], "emptied");
    } finally {
      if (mounted) await runner.run(["umount", dir]);
      await Deno.remove(dir, { recursive: true });
    }
  },
});
