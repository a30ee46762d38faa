/**
 * Giving memory back to the kernel once a node has settled: the pages of the executable that
 * start-up ran through (parsing, compiling, spawning: code never run again at rest) and the
 * memory the C allocator keeps free. Through libc (FFI); never throws: a no-op where libc or
 * /proc cannot be read.
 */

const MADV_DONTNEED = 4;

const SYMBOLS = {
  madvise: { parameters: ["usize", "usize", "i32"], result: "i32" },
  malloc_trim: { parameters: ["usize"], result: "i32" },
} as const;

/** Read-only mappings of `path` holding only pages of the file (no private copy). */
export function cleanMappings(smaps: string, path: string): { start: bigint; end: bigint }[] {
  const out: { start: bigint; end: bigint }[] = [];
  let cur: { start: bigint; end: bigint; ok: boolean } | null = null;
  const flush = () => {
    if (cur?.ok) out.push({ start: cur.start, end: cur.end });
  };
  for (const line of smaps.split("\n")) {
    const m = /^([0-9a-f]+)-([0-9a-f]+) (\S{4}) \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (m) {
      flush();
      const ok = m[4] === path && !m[3].includes("w");
      cur = { start: BigInt(`0x${m[1]}`), end: BigInt(`0x${m[2]}`), ok };
    } else if (cur?.ok) {
      // A private copy (e.g. relocated read-only data) must stay: dropping it would lose it.
      const a = /^(Anonymous|Private_Dirty):\s+(\d+)/.exec(line);
      if (a && Number(a[2]) > 0) cur.ok = false;
    }
  }
  flush();
  return out;
}

/** What {@link trimMemory} did, bytes. */
export interface TrimResult {
  /** Address space of the executable's clean mappings dropped. */
  executableBytes: number;
  /** Resident set before and after. */
  rssBefore: number;
  rssAfter: number;
}

/**
 * Drops this process's mappings of its executable's clean pages (they stay in the page cache
 * and come back on use) and returns the allocator's free memory to the kernel.
 */
export function trimMemory(): TrimResult {
  const rssBefore = Deno.memoryUsage().rss;
  let lib: Deno.DynamicLibrary<typeof SYMBOLS>;
  try {
    lib = Deno.dlopen("libc.so.6", SYMBOLS);
  } catch {
    return { executableBytes: 0, rssBefore, rssAfter: rssBefore };
  }
  try {
    let bytes = 0;
    let smaps = "";
    try {
      smaps = Deno.readTextFileSync("/proc/self/smaps");
    } catch {
      // No /proc (a confined service): the allocator is still trimmed.
    }
    for (const { start, end } of cleanMappings(smaps, Deno.execPath())) {
      if (lib.symbols.madvise(start, end - start, MADV_DONTNEED) === 0) {
        bytes += Number(end - start);
      }
    }
    lib.symbols.malloc_trim(0n);
    return { executableBytes: bytes, rssBefore, rssAfter: Deno.memoryUsage().rss };
  } finally {
    lib.close();
  }
}
