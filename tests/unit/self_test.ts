import assert from "node:assert/strict";
import { selfArgv, selfEnv, type SelfInfo } from "../../platform/self.ts";

const SOURCE: SelfInfo = {
  standalone: false,
  execPath: "/opt/deno/bin/deno",
  mainPath: "/src/re6st/main.ts",
  configPath: "/src/re6st/deno.json",
  denoDir: "/var/cache/deno",
};

Deno.test("from source the program runs itself as deno run with its config and main.ts", () => {
  assert.deepEqual(selfArgv(SOURCE), [
    "/opt/deno/bin/deno",
    "run",
    "-A",
    "--config",
    "/src/re6st/deno.json",
    "/src/re6st/main.ts",
  ]);
  assert.deepEqual(selfEnv(SOURCE), {
    NO_COLOR: "1",
    DENO_NO_UPDATE_CHECK: "1",
    DENO_DIR: "/var/cache/deno",
  });
});

Deno.test("a compiled binary runs itself as the bare executable", () => {
  const bin: SelfInfo = { ...SOURCE, standalone: true, execPath: "/usr/local/bin/re6st" };
  assert.deepEqual(selfArgv(bin), ["/usr/local/bin/re6st"]);
  assert.deepEqual(selfEnv(bin), { NO_COLOR: "1" });
});

Deno.test("this test process is detected as a source run whose main.ts exists", async () => {
  const argv = selfArgv();
  assert.equal(argv[0], Deno.execPath());
  assert.equal(argv[1], "run");
  assert.equal(argv.at(-1)!.endsWith("/main.ts"), true);
  assert.equal((await Deno.stat(argv.at(-1)!)).isFile, true);
  assert.equal((await Deno.stat(argv[4])).isFile, true);
});
