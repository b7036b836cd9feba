import { emptySeries, gpusOf, IHostSample, mergeSeries, points, polyline } from '../src/clusterseries';

const sample = (t: number, util: number | null = 10): IHostSample => ({
  timestamp: t,
  host: { cpu_percent: t, memory_used: 2 ** 30, memory_total: 2 ** 34 },
  gpus: [
    { index: 0, uuid: 'GPU-0f5a', utilization: util, memory_used: 1, memory_total: 2 },
    { index: 1, error: 'fell off the bus' }
  ]
});

describe('cluster series', () => {
  it('keeps each host once, adds only newer samples and keeps at most `keep`', () => {
    let kept = mergeSeries(emptySeries(), {
      hosts: [{ host: 'a', workers: 2, samples: [sample(1), sample(2)] }],
      as_of: 2.5
    });
    expect(kept.since).toBe(2.5);
    kept = mergeSeries(
      kept,
      { hosts: [{ host: 'a', workers: 2, samples: [sample(2), sample(3), sample(4)] }, { host: 'b', workers: 1, samples: [sample(4)] }], as_of: 4.5 },
      3
    );
    expect(kept.hosts.get('a')!.samples.map(s => s.timestamp)).toEqual([2, 3, 4]);
    expect([...kept.hosts.keys()]).toEqual(['a', 'b']);
    // A host no longer reported is dropped; a note (no plugin) is kept for the panel.
    kept = mergeSeries(kept, { hosts: [{ host: 'b', workers: 1, samples: [] }], note: 'no plugin' });
    expect([...kept.hosts.keys()]).toEqual(['b']);
    expect(kept.since).toBe(4.5);
    expect(kept.note).toBe('no plugin');
  });

  it('turns samples into lines, leaving out what a device does not report', () => {
    const samples = [sample(0, 5), sample(30, null), sample(60, 50)];
    expect(points(samples, s => s.gpus[0].utilization)).toEqual([
      [0, 5],
      [60, 50]
    ]);
    expect(polyline([[0, 0], [60, 100]], 100, 10, 100)).toBe('0.0,10.0 100.0,0.0');
    expect(polyline([], 100, 10, 100)).toBe('');
    expect(gpusOf({ host: 'a', workers: 1, samples }).map(g => g.index)).toEqual([0]);
  });
});
