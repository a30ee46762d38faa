// platform/self.ts replaceProcess: the program on disk replaces the process (same pid).
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";

const CHILD = fileURLToPath(new URL("../helpers/exec_child.ts", import.meta.url));

async function runChild(target: string[]): Promise<{ code: number; lines: string[] }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", CHILD, ...target],
    stdout: "piped",
    stderr: "inherit",
  }).output();
  return { code: out.code, lines: new TextDecoder().decode(out.stdout).trim().split("\n") };
}

Deno.test("replaceProcess runs the program on disk in the same process", async () => {
  const script = "console.log(`pid ${Deno.pid} args ${Deno.args.join(' ')}`); Deno.exit(7)";
  const r = await runChild([Deno.execPath(), "eval", script, "a b", "c"]);
  assert.equal(r.code, 7, "the exit status is the new program's");
  assert.equal(r.lines.length, 2, r.lines.join("\n"));
  const pid = r.lines[0].replace("pid ", "");
  assert.equal(r.lines[1], `pid ${pid} args a b c`, "same pid, arguments passed as they are");
});

Deno.test("replaceProcess says why when the program cannot run", async () => {
  const r = await runChild(["/nonexistent/re6st", "node"]);
  assert.equal(r.code, 1);
  assert.equal(r.lines[1], 'failed: execv "/nonexistent/re6st" failed: ENOENT');
});
