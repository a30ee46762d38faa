// Prometheus text parsed by a real parser (npm parse-prometheus-text-format), with lookups.
import parsePrometheusTextFormat from "parse-prometheus-text-format";

/** One metric family as the parser returns it. */
export interface Family {
  name: string;
  help: string;
  type: "COUNTER" | "GAUGE" | "HISTOGRAM" | "SUMMARY" | "UNTYPED";
  metrics: {
    value?: string;
    labels?: Record<string, string>;
    buckets?: Record<string, string>;
    count?: string;
    sum?: string;
  }[];
}

/** Parses Prometheus text format; throws on malformed text. */
export function parseMetrics(text: string): Map<string, Family> {
  const families = parsePrometheusTextFormat(text) as Family[];
  return new Map(families.map((f) => [f.name, f]));
}

/**
 * Value of the sample of `name` whose labels include `labels`; undefined when there is none.
 * Throws when several samples match.
 */
export function sample(
  families: Map<string, Family>,
  name: string,
  labels: Record<string, string> = {},
): number | undefined {
  const f = families.get(name);
  if (!f) return undefined;
  const hits = f.metrics.filter((m) =>
    Object.entries(labels).every(([k, v]) => m.labels?.[k] === v)
  );
  if (hits.length > 1) throw new Error(`${hits.length} samples of ${name} match`);
  if (!hits.length) return undefined;
  return Number(hits[0].value ?? hits[0].count);
}

/**
 * One labelled series of a histogram: buckets, count and sum. The parser merges the series of
 * a labelled histogram, so the series' lines are picked out (labels removed) and parsed alone.
 */
export function histogramSeries(
  text: string,
  name: string,
  labels: Record<string, string>,
): { buckets: Record<string, string>; count: number; sum: number } | undefined {
  const pairs = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  const lines = text.split("\n").filter((l) =>
    l === `# TYPE ${name} histogram` ||
    (/^\w+\{/.test(l) && l.startsWith(name + "_") && pairs.every((p) => l.includes(p)))
  ).map((l) =>
    pairs.reduce(
      (s, p) => s.replace(new RegExp(`,?${p},?`), (m) => m.length > p.length + 1 ? "," : ""),
      l,
    )
      .replace("{}", "")
  );
  const f = parseMetrics(lines.join("\n") + "\n").get(name);
  const m = f?.metrics[0];
  if (!m?.buckets) return undefined;
  return { buckets: m.buckets, count: Number(m.count), sum: Number(m.sum) };
}
