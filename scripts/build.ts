// Builds dist/re6st with `deno compile`. Deno needs its "denort" runtime for that, which it
// downloads from its release server unless DENORT_BIN points at one. Where neither works
// (machines without internet access) this fails with one clear line.
const out = "dist/re6st";
const denort = Deno.env.get("DENORT_BIN");
if (denort) {
  try {
    Deno.statSync(denort);
  } catch {
    console.error(`build: DENORT_BIN=${denort} does not exist`);
    Deno.exit(1);
  }
}
const args = ["compile", "-A", "--unstable-net", "--output", out, "main.ts"];
const child = new Deno.Command(Deno.execPath(), { args, stdout: "piped", stderr: "piped" });
const { code, stderr } = await child.output();
const text = new TextDecoder().decode(stderr);
if (code !== 0) {
  const why = /denort|download|dl\.deno\.land|github\.com/i.test(text)
    ? "Deno's runtime (denort) could not be downloaded here; set DENORT_BIN to a denort binary " +
      "of the same Deno version, or build where dl.deno.land is reachable"
    : (text.trim().split("\n").pop() ?? `deno compile exited with ${code}`);
  console.error(`build: cannot build ${out}: ${why}`);
  Deno.exit(1);
}
console.log(`build: wrote ${out}`);
