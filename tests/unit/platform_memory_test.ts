import assert from "node:assert/strict";
import { cleanMappings, trimMemory } from "../../platform/memory.ts";

const EXE = "/usr/bin/deno";
const SMAPS = `555555554000-555556000000 r--p 00000000 08:01 42     ${EXE}
Rss:                1024 kB
Anonymous:             0 kB
Private_Dirty:         0 kB
555556000000-555559000000 r-xp 00aac000 08:01 42     ${EXE}
Rss:               30000 kB
Anonymous:             0 kB
Private_Dirty:         0 kB
555559000000-555559100000 r--p 03aac000 08:01 42     ${EXE}
Rss:                1024 kB
Anonymous:           900 kB
Private_Dirty:       900 kB
555559100000-555559200000 rw-p 03bac000 08:01 42     ${EXE}
Rss:                1024 kB
Anonymous:             0 kB
7ffff7d00000-7ffff7e00000 r-xp 00000000 08:01 7      /usr/lib/x86_64-linux-gnu/libc.so.6
Rss:                 800 kB
Anonymous:             0 kB
7ffff7f00000-7ffff7f10000 rw-p 00000000 00:00 0
Rss:                  64 kB
Anonymous:            64 kB
`;

Deno.test("only the executable's read-only mappings without private copies are dropped", () => {
  assert.deepEqual(cleanMappings(SMAPS, EXE), [
    { start: 0x555555554000n, end: 0x555556000000n },
    { start: 0x555556000000n, end: 0x555559000000n },
  ]);
  assert.deepEqual(cleanMappings(SMAPS, "/usr/bin/other"), []);
});

Deno.test("trimming this process releases its executable's code and it keeps running", () => {
  const { executableBytes, rssBefore, rssAfter } = trimMemory();
  assert.ok(executableBytes > 1 << 20, `released ${executableBytes} bytes`);
  assert.ok(rssAfter < rssBefore, `resident ${rssBefore} → ${rssAfter} bytes`);
  // Code dropped from the mappings comes back from the page cache when it runs again.
  assert.equal(JSON.parse(JSON.stringify({ a: [1, 2, 3] })).a.length, 3);
  assert.ok(trimMemory().executableBytes > 0, "a second trim works too");
});
