/** The dashboard plots as the sidebar offers them: whole titles, grouped, filtered, GPU only with GPUs. */

import { filterPlots, groupPlots, parsePlots, plotGroup, plotLabel, plotList } from '../src/plots';

/** What distributed 2025's scheduler serves in individual-plots.json (all 33). */
const DASK: Record<string, string> = Object.fromEntries(
  [
    'workers-disk-timeseries', 'profile', 'aggregate-time-per-action', 'workers-memory', 'workers-cpu-timeseries',
    'group-progress', 'profile-server', 'compute-time-per-key', 'graph', 'workers-memory-timeseries',
    'gpu-utilization', 'workers-network', 'bandwidth-types', 'rmm-memory', 'cluster-memory', 'nprocessing',
    'workers-transfer-bytes', 'workers-disk', 'cpu', 'workers-network-timeseries', 'memory-by-key', 'exceptions',
    'contention', 'gpu-memory', 'fine-performance-metrics', 'groups', 'bandwidth-workers', 'occupancy',
    'task-stream', 'progress', 'workers', 'scheduler-system'
  ]
    .map(p => [`Individual ${p.replace(/-/g, ' ').replace(/\b\w/g, c => c.toUpperCase())}`, `/individual-${p}`] as [string, string])
    .concat([['Individual Cluster Map', '/statics/individual-cluster-map.html']])
);

describe('dashboard plots', () => {
  it("keeps Dask's whole titles, acronyms as Dask's page writes them", () => {
    const labels = parsePlots(DASK).map(p => p.label);
    expect(labels).toHaveLength(33);
    expect(labels).toContain('Workers Memory Timeseries'); // not cut to a second "Workers Memory"
    expect(labels).toContain('Aggregate Time Per Action');
    expect(labels).toContain('Workers CPU Timeseries');
    expect(plotLabel('Individual Rmm Memory')).toBe('RMM Memory');
    expect(plotLabel('Individual Gpu Utilization')).toBe('GPU Utilization');
  });

  it('puts every plot Dask serves in the group of what it shows', () => {
    const byGroup: Record<string, string[]> = {};
    for (const plot of parsePlots(DASK)) {
      (byGroup[plot.group] ??= []).push(plot.path.replace(/^(statics\/)?individual-/, '').replace('.html', ''));
    }
    expect(byGroup).toEqual({
      tasks: [
        'aggregate-time-per-action', 'compute-time-per-key', 'contention', 'exceptions', 'fine-performance-metrics',
        'graph', 'group-progress', 'groups', 'profile', 'progress', 'task-stream'
      ],
      workers: [
        'cluster-map', 'cpu', 'nprocessing', 'occupancy', 'workers', 'workers-cpu-timeseries', 'workers-disk',
        'workers-disk-timeseries'
      ],
      memory: ['cluster-memory', 'memory-by-key', 'workers-memory', 'workers-memory-timeseries'],
      network: ['bandwidth-types', 'bandwidth-workers', 'workers-network', 'workers-network-timeseries', 'workers-transfer-bytes'],
      gpu: ['gpu-memory', 'gpu-utilization', 'rmm-memory'],
      other: ['profile-server', 'scheduler-system']
    });
    expect(plotGroup('individual-cpu')).toBe('workers');
    expect(plotGroup('individual-something-new')).toBe('other');
  });

  it('filters by every word, in the title or the group, any case', () => {
    const plots = parsePlots(DASK);
    expect(filterPlots(plots, 'MEMORY time').map(p => p.label)).toEqual(['Workers Memory Timeseries']);
    expect(filterPlots(plots, 'network').map(p => p.path)).toContain('individual-bandwidth-types'); // by group
    expect(filterPlots(plots, '  ')).toHaveLength(33);
    expect(filterPlots(plots, 'nothing like this')).toEqual([]);
    // The group's name as the reader's language says it counts too.
    expect(filterPlots(plots, 'mémoire', g => (g === 'memory' ? 'Mémoire' : g))).toHaveLength(4);
  });

  it('groups in a fixed order and leaves empty groups out', () => {
    const groups = groupPlots(filterPlots(parsePlots(DASK), 'stream progress').concat(parsePlots({ X: '/individual-cpu' })));
    expect(groups.map(g => g.group)).toEqual(['workers']);
    expect(groupPlots(parsePlots(DASK)).map(g => g.group)).toEqual(['tasks', 'workers', 'memory', 'network', 'gpu', 'other']);
  });

  it('offers GPU plots only where a worker reports a GPU', () => {
    const cpu = plotList({ plots: DASK, workers: 2, gpu_workers: 0 });
    expect(cpu.plots.some(p => p.group === 'gpu')).toBe(false);
    expect(cpu.hidden.map(p => p.path)).toEqual(['individual-gpu-memory', 'individual-gpu-utilization', 'individual-rmm-memory']);
    expect(cpu.plots).toHaveLength(30);
    const gpu = plotList({ plots: DASK, workers: 2, gpu_workers: 1 });
    expect(gpu.plots).toHaveLength(33);
    expect(gpu.hidden).toEqual([]);
  });
});
