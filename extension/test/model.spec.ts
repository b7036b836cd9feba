import {
  clusterSummary,
  connectCode,
  costLine,
  formatBytes,
  formatDuration,
  ICluster,
  ICost,
  idleLine,
  jobLine,
  memoryPercent,
  runSteps,
  stepNotebookPath
} from '../src/model';

const cluster: ICluster = {
  name: 'c1',
  backend: 'local',
  status: 'running',
  scheduler_address: 'tcp://127.0.0.1:1',
  dashboard_link: 'http://127.0.0.1:2/status',
  workers: 1,
  threads: 2,
  memory: 2 * 1024 ** 3,
  gpus: [],
  adapt: null,
  owner: { kind: 'server' },
  created: 0
};

describe('formatting', () => {
  it('formats bytes in binary units', () => {
    expect(formatBytes(0)).toBe('-');
    expect(formatBytes(null)).toBe('-');
    expect(formatBytes(512)).toBe('512 B');
    expect(formatBytes(1536)).toBe('1.5 KiB');
    expect(formatBytes(80 * 1024 ** 3)).toBe('80.0 GiB');
  });

  it('summarises a cluster in one line', () => {
    expect(clusterSummary(cluster)).toBe('1 worker · 2 threads · 2.0 GiB memory');
    expect(clusterSummary({ ...cluster, workers: 2, gpus: ['0', '1'], adapt: '1:4' })).toBe(
      '2 workers · 2 threads · 2.0 GiB memory · GPUs 0,1 · adapt 1:4'
    );
  });

  it('formats what a cluster used and its idle clock', () => {
    const used: ICost = { worker_hours: 0.0123, core_hours: 0.0492, gpu_hours: 0, memory_gb_hours: 12.34 };
    expect(costLine(used)).toBe('0.012 worker-h · 0.049 core-h · 0.000 GPU-h · 12.3 GB-h memory');
    expect(costLine(used, false)).toBe('0.012 worker-h · 0.049 core-h · 12.3 GB-h memory'); // no GPUs
    expect(costLine(null)).toBeNull();
    expect(idleLine(used)).toBeNull(); // no idle timeout
    expect(idleLine({ ...used, idle_timeout: 300 }, 1000)).toBe('busy · stops after 5m 00s idle');
    const idle = { ...used, idle_since: 1000, idle_timeout: 300, as_of: 1010 };
    expect(idleLine(idle, 1042)).toMatch(/^idle 42s · stops in 4m 18s \(at .+\)$/);
    expect(idleLine(idle, 1005)).toMatch(/^idle 10s · stops in 4m 50s/); // as_of is later than now
    expect(idleLine(idle, 2000)).toMatch(/^idle 16m 40s · stops in 0s/);
    expect(formatDuration(7380)).toBe('2h 03m');
  });

  it('describes a batch job in one line', () => {
    expect(jobLine({ job_id: '12', state: 'RUNNING', node: 'n1', time_left: '9:41' })).toBe(
      'job 12 RUNNING on n1 · 9:41 left'
    );
    expect(jobLine({ job_id: '13', state: 'PENDING', reason: 'Resources', node: null })).toBe(
      'job 13 PENDING (Resources)'
    );
  });

  it('computes memory use only when both numbers are known', () => {
    expect(memoryPercent({ index: 0, memory_used: 25, memory_total: 100 })).toBe(25);
    expect(memoryPercent({ index: 0, memory_used: null, memory_total: 100 })).toBeNull();
    expect(memoryPercent({ index: 0, memory_used: 5, memory_total: 0 })).toBeNull();
  });

  it('writes connect code that names the cluster safely', () => {
    expect(connectCode('c1')).toContain('client = manager.connect("c1")');
    // The manager is an object (clusters/manager.py keeps no module-level wrappers).
    expect(connectCode('c1')).toContain(
      'from aiinfra_magics.clusters.manager import ClusterManager\nmanager = ClusterManager()\n'
    );
    expect(connectCode('a"b')).toContain('manager.connect("a\\"b")');
  });
});

describe('runs', () => {
  it('lists steps from a dict or a list', () => {
    const run = { run_id: 'r1', folder: 'demo/runs/r1', steps: { prepare: { status: 'ok' } } };
    expect(runSteps(run)).toEqual([{ name: 'prepare', status: 'ok' }]);
    expect(runSteps({ run_id: 'r2', steps: [{ status: 'failed', name: 'x' } as any] })[0].name).toBe('x');
    expect(runSteps({ run_id: 'r3' })).toEqual([]);
  });

  it('opens a step only through the path the server resolved below its root', () => {
    expect(stepNotebookPath({ notebook_path: 'demo/runs/r1/train.ipynb' })).toBe('demo/runs/r1/train.ipynb');
    expect(stepNotebookPath({ notebook: '/elsewhere/train.ipynb', notebook_path: null })).toBeNull();
    expect(stepNotebookPath({})).toBeNull();
  });
});
