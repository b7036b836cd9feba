import { chartData, formatValue } from '../src/charts';
import { parsePlots } from '../src/plots';
import { IGpuMetrics } from '../src/model';

const gpu = (index: number, t: number) => ({
  index,
  utilization: 10 * t,
  memory_used: 2 ** 30 * t,
  memory_total: 2 ** 34,
  pcie_tx: 1000 * t,
  pcie_rx: 2000 * t,
  nvlink_tx: null,
  nvlink_rx: null,
  mig: index === 1 ? [{ index: 0, memory_used: 5, memory_total: 10 }] : []
});

const sample = (t: number, gpus = [gpu(0, t), gpu(1, t)]): IGpuMetrics => ({
  gpus,
  reason: gpus.length ? null : 'No GPU charts: this machine has no NVIDIA driver (NVML library not found).',
  timestamp: 1000 + t,
  host: { cpu_percent: 50, memory_used: 4, memory_total: 8, net_sent: null, net_recv: 3, disk_read: 1, disk_write: 2 }
});

describe('charts', () => {
  const history = [sample(1), sample(2), sample(3)];

  it('draws one line per GPU over time', () => {
    const data = chartData('gpu-utilization', history);
    expect(data.note).toBeNull();
    expect(data.plots[0].lines.map(l => l.name)).toEqual(['GPU 0', 'GPU 1']);
    expect(data.plots[0].lines[0].points).toEqual([[1001, 10], [1002, 20], [1003, 30]]);
    expect(data.plots[0].max).toBe(100);
  });

  it('draws memory up to the total, with MIG slices', () => {
    const data = chartData('gpu-memory', history);
    expect(data.plots[0].max).toBe(2 ** 34);
    expect(data.plots[0].lines.map(l => l.name)).toEqual(['GPU 0', 'GPU 1', 'GPU 1 MIG 0']);
  });

  it('draws PCIe both ways and says when a board reports no NVLink', () => {
    expect(chartData('gpu-pcie', history).plots[0].lines.map(l => l.name)).toEqual(['GPU 0 TX', 'GPU 1 TX', 'GPU 0 RX', 'GPU 1 RX']);
    const nvlink = chartData('gpu-nvlink', history);
    expect(nvlink.plots).toEqual([]);
    expect(nvlink.note).toBe('These GPUs do not report NVLink throughput.');
  });

  it('says why there are no GPU charts in one sentence, and still draws the host', () => {
    const none = [sample(1, []), sample(2, [])];
    const data = chartData('gpu-utilization', none);
    expect(data.plots).toEqual([]);
    expect(data.note).toBe('No GPU charts: this machine has no NVIDIA driver (NVML library not found).');
    const host = chartData('machine', none);
    expect(host.note).toBeNull();
    expect(host.plots.map(p => p.title)).toEqual(['CPU', 'Memory', 'Network', 'Disk']);
    expect(host.plots[1].max).toBe(8);
    expect(host.plots[2].lines.map(l => l.name)).toEqual(['received']); // sent unknown yet
  });

  it('formats values', () => {
    expect(formatValue(42.4, '%')).toBe('42%');
    expect(formatValue(1536, 'B')).toBe('1.5 KiB');
    expect(formatValue(3 * 2 ** 20, 'B/s')).toBe('3.0 MiB/s');
  });

  it('lists only plot paths that stay below the dashboard', () => {
    expect(
      parsePlots({ 'Individual Task Stream': '/individual-task-stream', Evil: '/../../api/contents', Odd: 'a b', N: 3 })
    ).toEqual([{ label: 'Task Stream', path: 'individual-task-stream', group: 'tasks' }]);
    expect(parsePlots(null)).toEqual([]);
    expect(parsePlots(['x'])).toEqual([]);
  });
});
