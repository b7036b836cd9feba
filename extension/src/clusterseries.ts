/**
 * A cluster's per-host series as the server gives them
 * (`GET aiinfra/api/clusters/NAME/metrics?since=T`), kept and shaped for the
 * small-multiples charts. Pure (no JupyterLab imports) so jest can test it.
 */

/** One GPU of a host sample (the workers' sampler, metrics/sample.py). */
export interface IGpuSample {
  index: number;
  uuid?: string | null;
  name?: string | null;
  utilization?: number | null;
  memory_used?: number | null;
  memory_total?: number | null;
  power_watts?: number | null;
  mig?: { uuid?: string | null; memory_used?: number | null; memory_total?: number | null }[];
  error?: string;
}

export interface IHostSample {
  timestamp: number;
  host: {
    cpu_percent?: number | null;
    memory_used?: number | null;
    memory_total?: number | null;
    net_sent?: number | null;
    net_recv?: number | null;
  } | null;
  gpus: IGpuSample[];
}

export interface IHostSeries {
  host: string;
  workers: number;
  reason?: string | null;
  samples: IHostSample[];
}

export interface IMetricsReply {
  hosts: IHostSeries[];
  as_of?: number;
  interval?: number;
  note?: string;
}

/** What the panel keeps: each host's samples (at most `keep`), and the next `since`. */
export interface IClusterSeries {
  hosts: Map<string, IHostSeries>;
  since: number | null;
  note?: string;
}

export function emptySeries(): IClusterSeries {
  return { hosts: new Map(), since: null };
}

/** Add a reply's new samples to what is kept; hosts no longer reported are dropped. */
export function mergeSeries(kept: IClusterSeries, reply: IMetricsReply, keep = 600): IClusterSeries {
  const hosts = new Map<string, IHostSeries>();
  for (const series of reply.hosts ?? []) {
    const before = kept.hosts.get(series.host)?.samples ?? [];
    const last = before.length ? before[before.length - 1].timestamp : -Infinity;
    const added = (series.samples ?? []).filter(s => s.timestamp > last);
    hosts.set(series.host, { ...series, samples: [...before, ...added].slice(-keep) });
  }
  return { hosts, since: reply.as_of ?? kept.since, note: reply.note };
}

/** A line's points (time, value) of one figure of a host's samples; nulls left out. */
export function points(samples: IHostSample[], pick: (s: IHostSample) => number | null | undefined): [number, number][] {
  const out: [number, number][] = [];
  for (const s of samples) {
    const v = pick(s);
    if (typeof v === 'number' && Number.isFinite(v)) {
      out.push([s.timestamp, v]);
    }
  }
  return out;
}

/** An SVG polyline's `points` for values over [t0, t1] x [0, top] in a width x height box. */
export function polyline(line: [number, number][], width: number, height: number, top: number): string {
  if (line.length === 0) {
    return '';
  }
  const t1 = line[line.length - 1][0];
  const t0 = Math.min(line[0][0], t1 - 60); // at least the last minute
  const span = Math.max(1e-9, t1 - t0);
  return line
    .map(([t, v]) => {
      const x = ((t - t0) / span) * width;
      const y = height - (Math.min(Math.max(v, 0), top) / top) * height;
      return `${x.toFixed(1)},${y.toFixed(1)}`;
    })
    .join(' ');
}

/** The GPUs a host's latest sample lists (index order). */
export function gpusOf(series: IHostSeries): IGpuSample[] {
  const latest = series.samples[series.samples.length - 1];
  return latest ? latest.gpus.filter(g => !g.error) : [];
}
