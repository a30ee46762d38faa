// Seeded randomness for the simulation: one stream per trial, so that a seed replays a run.

/** A random source: numbers in [0, 1), like Math.random. */
export type Random = () => number;

/** A seeded generator (sfc32, seeded through splitmix32). */
export function seeded(seed: number): Random {
  let s = seed >>> 0;
  const mix = () => {
    s = (s + 0x9e3779b9) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
    return (z ^ (z >>> 16)) >>> 0;
  };
  let a = mix(), b = mix(), c = mix(), d = mix();
  return () => {
    let t = (a + b) | 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) | 0;
    c = (c << 21) | (c >>> 11);
    d = (d + 1) | 0;
    t = (t + d) | 0;
    c = (c + t) | 0;
    return (t >>> 0) / 4294967296;
  };
}

/** A random integer in [0, n). */
export function below(random: Random, n: number): number {
  return Math.floor(random() * n);
}

/** Shuffles `xs` in place (Fisher–Yates) and returns it. */
export function shuffle<T>(random: Random, xs: T[]): T[] {
  for (let i = xs.length - 1; i > 0; i--) {
    const j = below(random, i + 1);
    [xs[i], xs[j]] = [xs[j], xs[i]];
  }
  return xs;
}

/** `k` distinct random items of `xs` (k ≤ xs.length). */
export function sample<T>(random: Random, xs: readonly T[], k: number): T[] {
  const copy = [...xs];
  const out: T[] = [];
  for (let i = 0; i < k && copy.length; i++) {
    const j = below(random, copy.length);
    out.push(copy[j]);
    copy[j] = copy[copy.length - 1];
    copy.pop();
  }
  return out;
}
