/**
 * A cluster's Dask dashboard plots as the sidebar lists them: the scheduler's own
 * `individual-plots.json` (through `GET aiinfra/api/clusters/{name}/plots`), with
 * Dask's whole titles, grouped by what they show, filtered by words, and the GPU
 * plots only where a worker has a GPU. Pure code: jest checks it as is.
 */

/** What a dashboard plot shows, for grouping the list: the order is the list's. */
export type PlotGroup = 'tasks' | 'workers' | 'memory' | 'network' | 'gpu' | 'other';

export const PLOT_GROUPS: readonly PlotGroup[] = ['tasks', 'workers', 'memory', 'network', 'gpu', 'other'];

/** One of the scheduler's individual dashboard plots (its `individual-plots.json`). */
export interface IPlot {
  /** Dask's own title, whole: `Workers Memory Timeseries`. */
  label: string;
  /** Path below the dashboard root, without a leading slash: `individual-task-stream`. */
  path: string;
  group: PlotGroup;
}

/**
 * The group of a plot, from its path (`individual-workers-memory-timeseries`).
 * The first rule that matches wins: a plot of the workers' memory is a memory plot.
 */
export function plotGroup(path: string): PlotGroup {
  const name = path.toLowerCase();
  const rules: Array<[PlotGroup, RegExp]> = [
    ['gpu', /gpu|rmm/],
    ['memory', /memory/],
    ['network', /bandwidth|network|transfer/],
    ['tasks', /task|progress|graph|group|profile(?!-server)|exception|compute-time|aggregate-time|contention|fine-performance/],
    ['workers', /workers|cpu|disk|nprocessing|occupancy|cluster-map/]
  ];
  return rules.find(([, rule]) => rule.test(name))?.[0] ?? 'other';
}

/** Dask's title of a plot without its `Individual ` prefix, acronyms as Dask's own page writes them. */
export function plotLabel(title: string): string {
  return title
    .replace(/^Individual /, '')
    .replace(/\bCpu\b/g, 'CPU')
    .replace(/\bGpu\b/g, 'GPU')
    .replace(/\bRmm\b/g, 'RMM');
}

/** The plots of a Dask dashboard's `individual-plots.json` ({title: "/path"}), sorted by title. */
export function parsePlots(data: unknown): IPlot[] {
  if (!data || typeof data !== 'object' || Array.isArray(data)) {
    return [];
  }
  return Object.entries(data as Record<string, unknown>)
    .filter(([, path]) => typeof path === 'string' && /^\/?[A-Za-z0-9_./-]+$/.test(path) && !path.includes('..'))
    .map(([title, path]) => {
      const relative = (path as string).replace(/^\/+/, '');
      return { label: plotLabel(title), path: relative, group: plotGroup(relative) };
    })
    .sort((a, b) => a.label.localeCompare(b.label));
}

/** What `GET aiinfra/api/clusters/{name}/plots` answers. */
export interface IPlotsAnswer {
  plots: Record<string, string>;
  workers: number;
  gpu_workers: number;
}

/** A cluster's plots as the sidebar offers them: GPU plots only where a worker has a GPU. */
export interface IPlotList {
  plots: IPlot[];
  /** Served, but with nothing to show: GPU plots while no worker reports a GPU. */
  hidden: IPlot[];
  workers: number;
  gpuWorkers: number;
}

export function plotList(answer: IPlotsAnswer): IPlotList {
  const all = parsePlots(answer.plots);
  const gpuWorkers = Number(answer.gpu_workers) || 0;
  const useless = (p: IPlot) => p.group === 'gpu' && gpuWorkers === 0;
  return {
    plots: all.filter(p => !useless(p)),
    hidden: all.filter(useless),
    workers: Number(answer.workers) || 0,
    gpuWorkers
  };
}

/** The plots whose title or group (as `groupLabel` names it) holds every word of `query`, any case. */
export function filterPlots(
  plots: readonly IPlot[],
  query: string,
  groupLabel: (group: PlotGroup) => string = group => group
): IPlot[] {
  const words = query.toLowerCase().split(/\s+/).filter(w => w !== '');
  return plots.filter(p => {
    const text = `${p.label} ${p.group} ${groupLabel(p.group)}`.toLowerCase();
    return words.every(w => text.includes(w));
  });
}

/** Plots by group, in PLOT_GROUPS order; empty groups left out. */
export function groupPlots(plots: readonly IPlot[]): Array<{ group: PlotGroup; plots: IPlot[] }> {
  return PLOT_GROUPS.map(group => ({ group, plots: plots.filter(p => p.group === group) })).filter(
    g => g.plots.length > 0
  );
}
