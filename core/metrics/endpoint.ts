// What the metrics HTTP server (platform/metrics_http.ts) serves: Prometheus text, made anew
// at each scrape.

/** A set of metrics in the Prometheus text format. */
export interface MetricsEndpoint {
  /** Media type of the text ("text/plain; version=0.0.4; charset=utf-8"). */
  contentType: string;
  /** The metrics as they are now. */
  scrape(): Promise<string>;
}
