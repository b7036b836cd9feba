/**
 * The GPU and host charts, as nvdashboard has them, as pure data: which
 * series each chart draws from the sampler's history. The view (chartview.tsx)
 * only draws what these functions return.
 */

import { TranslationBundle, UNTRANSLATED } from './i18n';
import { IGpuMetrics } from './model';

export type ChartKind = 'gpu-utilization' | 'gpu-memory' | 'gpu-pcie' | 'gpu-nvlink' | 'machine';

/**
 * The chart of a cluster (not this machine): every host and GPU as small multiples,
 * from its workers' sampler (clustercharts.tsx). The same command opens it:
 * `aiinfra:open-chart {chart: 'hosts', cluster: NAME}`.
 */
export const HOSTS_CHART = 'hosts';

export interface IChartInfo {
  kind: ChartKind;
  label: string;
  /** GPU charts need GPUs; the host chart works everywhere. */
  gpu: boolean;
}

export const CHARTS: IChartInfo[] = [
  { kind: 'gpu-utilization', label: 'GPU Utilization', gpu: true },
  { kind: 'gpu-memory', label: 'GPU Memory', gpu: true },
  { kind: 'gpu-pcie', label: 'PCIe Throughput', gpu: true },
  { kind: 'gpu-nvlink', label: 'NVLink Throughput', gpu: true },
  { kind: 'machine', label: 'Machine Resources', gpu: false }
];

export function chartInfo(kind: string): IChartInfo | undefined {
  return CHARTS.find(c => c.kind === kind);
}

/** A chart's title, translated; `short` for the sidebar's buttons (`PCIe`, `Host`). */
export function chartLabel(
  kind: ChartKind | typeof HOSTS_CHART,
  trans: TranslationBundle = UNTRANSLATED,
  short = false
): string {
  switch (kind) {
    case HOSTS_CHART:
      return short ? trans.__('Hosts and GPUs') : trans.__('Hosts and GPUs of the cluster');
    case 'gpu-utilization':
      return trans.__('GPU Utilization');
    case 'gpu-memory':
      return trans.__('GPU Memory');
    case 'gpu-pcie':
      return short ? trans.__('PCIe') : trans.__('PCIe Throughput');
    case 'gpu-nvlink':
      return short ? trans.__('NVLink') : trans.__('NVLink Throughput');
    case 'machine':
      return short ? trans.__('Host') : trans.__('Machine Resources');
  }
}

/** One line: points as [seconds since epoch, value]. */
export interface ILine {
  name: string;
  points: Array<[number, number]>;
}

/** One plot area: its lines share a unit and an axis. */
export interface IPlotArea {
  title: string;
  unit: '%' | 'B' | 'B/s';
  /** A fixed top of the axis (100 for percentages, the memory total), or null to fit the data. */
  max: number | null;
  lines: ILine[];
}

export interface IChartData {
  plots: IPlotArea[];
  /** Said instead of (or above) the plots: why a GPU chart is empty. */
  note: string | null;
}

type Pick = (m: IGpuMetrics) => Array<[string, number | null | undefined]>;

function lines(history: IGpuMetrics[], pick: Pick): ILine[] {
  const byName = new Map<string, ILine>();
  for (const sample of history) {
    if (sample.timestamp === null) {
      continue;
    }
    for (const [name, value] of pick(sample)) {
      if (value === null || value === undefined || !isFinite(value)) {
        continue;
      }
      let line = byName.get(name);
      if (!line) {
        line = { name, points: [] };
        byName.set(name, line);
      }
      line.points.push([sample.timestamp, value]);
    }
  }
  return [...byName.values()];
}

function perGpu(
  history: IGpuMetrics[],
  key: keyof IGpuMetrics['gpus'][number],
  trans: TranslationBundle,
  suffix = ''
): ILine[] {
  return lines(history, m => m.gpus.map(g => [trans.__('GPU %1', g.index) + suffix, g[key] as number | null | undefined]));
}

/** The last GPU memory total seen (the axis top of the memory chart). */
function memoryTotal(history: IGpuMetrics[]): number | null {
  const last = history[history.length - 1];
  const totals = (last?.gpus ?? []).map(g => g.memory_total ?? 0);
  return totals.length ? Math.max(...totals) : null;
}

/** What a chart of `kind` draws from `history` (oldest sample first). */
export function chartData(kind: ChartKind, history: IGpuMetrics[], trans: TranslationBundle = UNTRANSLATED): IChartData {
  const last = history[history.length - 1];
  const hasGpus = (last?.gpus ?? []).length > 0;
  const waiting = trans.__('Waiting for the first sample…');
  const gpuNote = hasGpus ? null : last?.reason ?? waiting;
  switch (kind) {
    case 'gpu-utilization':
      return {
        note: gpuNote,
        plots: hasGpus
          ? [{ title: trans.__('Utilization'), unit: '%', max: 100, lines: perGpu(history, 'utilization', trans) }]
          : []
      };
    case 'gpu-memory': {
      const mig = lines(history, m =>
        m.gpus.flatMap(g =>
          (g.mig ?? []).map(s => [trans.__('GPU %1 MIG %2', g.index, s.index), s.memory_used] as [string, number | null | undefined])
        )
      );
      return {
        note: gpuNote,
        plots: hasGpus
          ? [
              {
                title: trans.__('Memory used'),
                unit: 'B',
                max: memoryTotal(history),
                lines: [...perGpu(history, 'memory_used', trans), ...mig]
              }
            ]
          : []
      };
    }
    case 'gpu-pcie':
    case 'gpu-nvlink': {
      const link = kind === 'gpu-pcie' ? 'pcie' : 'nvlink';
      const tx = perGpu(history, `${link}_tx` as any, trans, ' TX');
      const rx = perGpu(history, `${link}_rx` as any, trans, ' RX');
      let note = gpuNote;
      if (hasGpus && tx.length + rx.length === 0) {
        note =
          kind === 'gpu-pcie'
            ? trans.__('These GPUs do not report PCIe throughput.')
            : trans.__('These GPUs do not report NVLink throughput.');
      }
      return {
        note,
        plots:
          hasGpus && tx.length + rx.length
            ? [{ title: trans.__('Throughput'), unit: 'B/s', max: null, lines: [...tx, ...rx] }]
            : []
      };
    }
    case 'machine': {
      const host = (pick: (h: NonNullable<IGpuMetrics['host']>) => Array<[string, number | null | undefined]>) =>
        lines(history, m => (m.host ? pick(m.host) : []));
      const total = last?.host?.memory_total ?? null;
      return {
        note: history.some(m => m.host) ? null : waiting,
        plots: [
          { title: trans.__('CPU'), unit: '%', max: 100, lines: host(h => [[trans.__('CPU'), h.cpu_percent]]) },
          { title: trans.__('Memory'), unit: 'B', max: total, lines: host(h => [[trans.__('used'), h.memory_used]]) },
          {
            title: trans.__('Network'),
            unit: 'B/s',
            max: null,
            lines: host(h => [
              [trans.__('sent'), h.net_sent],
              [trans.__('received'), h.net_recv]
            ])
          },
          {
            title: trans.__('Disk'),
            unit: 'B/s',
            max: null,
            lines: host(h => [
              [trans.__('read'), h.disk_read],
              [trans.__('written'), h.disk_write]
            ])
          }
        ]
      };
    }
  }
}

/** The value of a unit for the axis and the legend. */
export function formatValue(value: number, unit: IPlotArea['unit']): string {
  if (unit === '%') {
    return `${value.toFixed(0)}%`;
  }
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = value;
  let i = 0;
  while (Math.abs(v) >= 1024 && i < units.length - 1) {
    v /= 1024;
    i += 1;
  }
  const text = `${v >= 100 || i === 0 ? v.toFixed(0) : v.toFixed(1)} ${units[i]}`;
  return unit === 'B/s' ? `${text}/s` : text;
}
