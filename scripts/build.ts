// Builds dist/re6st with `deno compile`. Deno needs its "denort" runtime for that, which it
// downloads from its release server unless DENORT_BIN points at one. Where neither works
// (machines without internet access) this fails with one clear line.
// Usage: deno task build [--target TRIPLE] [--output FILE], e.g. the release workflow's
// `--target aarch64-unknown-linux-gnu --output dist/re6st-aarch64-linux`.
const opts: { target?: string; output?: string } = {};
for (let i = 0; i < Deno.args.length; i += 2) {
  const [flag, value] = [Deno.args[i], Deno.args[i + 1]];
  if ((flag !== "--target" && flag !== "--output") || !value) {
    console.error(
      `build: usage: deno task build [--target TRIPLE] [--output FILE] (got "${flag}")`,
    );
    Deno.exit(2);
  }
  opts[flag.slice(2) as "target" | "output"] = value;
}
const out = opts.output ?? "dist/re6st";
const denort = Deno.env.get("DENORT_BIN");
if (denort) {
  try {
    Deno.statSync(denort);
  } catch {
    console.error(`build: DENORT_BIN=${denort} does not exist`);
    Deno.exit(1);
  }
}
const target = opts.target ? ["--target", opts.target] : [];
const args = ["compile", "-A", "--unstable-net", ...target, "--output", out, "main.ts"];
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
