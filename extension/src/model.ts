/**
 * The panel's data: what the server's routes return, the model one poll
 * fills, and the pure helpers that shape it for display.
 */

import { Poll } from '@lumino/polling';
import { ISignal, Signal } from '@lumino/signaling';

import { APIError, IRequester, requestAPI } from './api';
import { IBackend } from './backends';
import { EventStream, ISocketLike, PushMessage } from './events';
import { TranslationBundle, UNTRANSLATED } from './i18n';
import { IPlotList, IPlotsAnswer, plotList } from './plots';

export interface IGpuSample {
  index: number;
  name?: string | null;
  uuid?: string | null;
  utilization?: number | null;
  memory_used?: number | null;
  memory_total?: number | null;
  temperature?: number | null;
  power_watts?: number | null;
  /** PCIe and NVLink throughput in bytes/s (null: this board does not report it). */
  pcie_tx?: number | null;
  pcie_rx?: number | null;
  nvlink_tx?: number | null;
  nvlink_rx?: number | null;
  mig?: Array<{ index: number; uuid?: string | null; memory_used?: number | null; memory_total?: number | null }>;
  error?: string;
}

/** This machine's CPU, memory, network and disk, from the server's one sampler. */
export interface IHostSample {
  cpu_percent?: number | null;
  memory_used?: number | null;
  memory_total?: number | null;
  /** Bytes/s since the previous sample (null on the first one). */
  net_sent?: number | null;
  net_recv?: number | null;
  disk_read?: number | null;
  disk_write?: number | null;
}

export interface IGpuMetrics {
  gpus: IGpuSample[];
  /** Why there are no GPU figures, in one sentence (null when there are). */
  reason: string | null;
  timestamp: number | null;
  host?: IHostSample | null;
}

export interface IInventory {
  available: boolean;
  reason?: string;
  host?: string;
  gpus: Array<{ index: number; name?: string; memory_total?: number; uuid?: string }>;
  gpu_note?: string | null;
  tpus: unknown[];
  tpu_note?: string | null;
  cpu?: { model?: string; logical_cores?: number; usable_cores?: number };
  memory?: { total?: number; available?: number };
}

export interface ICluster {
  name: string;
  backend: string | null;
  status: string;
  scheduler_address: string | null;
  dashboard_link: string | null;
  workers: number;
  threads: number;
  memory: number;
  gpus: string[];
  adapt: string | null;
  owner: { kind?: string; pid?: number; host?: string };
  created: number | null;
  /** A batch backend's queue (SLURM: `live_details`): one row per job, a summary, refusals. */
  jobs?: IJob[];
  queue?: string;
  submit_errors?: string[];
  /** What the cluster used so far and its idle clock (the scheduler's cost plugin). */
  cost?: ICost | null;
}

/** The `cost` field of a cluster: hours so far, and the idle clock (epoch seconds). */
export interface ICost {
  worker_hours: number;
  core_hours: number;
  gpu_hours: number;
  memory_gb_hours: number;
  workers_now?: number;
  since?: number | null;
  as_of?: number | null;
  ended?: number | null;
  idle_since?: number | null;
  idle_timeout?: number | null;
}

export interface IJob {
  job_id: string;
  state: string;
  reason?: string | null;
  time_left?: string | null;
  node?: string | null;
  name?: string;
}

export interface IRunStep {
  status?: string;
  duration?: number | null;
  notebook?: string | null;
  notebook_path?: string | null;
  error?: string | null;
}

export interface IRun {
  run_id: string;
  status?: string;
  pipeline?: string;
  folder?: string | null;
  start?: number | string | null;
  steps?: Record<string, IRunStep> | IRunStep[];
}

export interface ILaunch {
  launch: string;
  pipeline: string;
  status: string;
  exit_code: number | null;
  log: string;
}

export interface IRuns {
  available: boolean;
  reason?: string;
  runs: IRun[];
  launches: ILaunch[];
}

/** The code a notebook cell needs to use the cluster. */
export function connectCode(name: string): string {
  return (
    'from aiinfra_magics.clusters.manager import ClusterManager\n' +
    'manager = ClusterManager()\n' +
    `client = manager.connect(${JSON.stringify(name)})\n` +
    'client'
  );
}

export function formatBytes(n: number | null | undefined): string {
  if (n === null || n === undefined || !isFinite(n) || n <= 0) {
    return '-';
  }
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let value = n;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${value >= 100 || unit === 0 ? value.toFixed(0) : value.toFixed(1)} ${units[unit]}`;
}

/** 0..100 share of memory used, or null when unknown. */
export function memoryPercent(gpu: IGpuSample): number | null {
  if (!gpu.memory_total || gpu.memory_used === null || gpu.memory_used === undefined) {
    return null;
  }
  return Math.min(100, Math.max(0, (100 * gpu.memory_used) / gpu.memory_total));
}

/** `job 12 RUNNING on n1 · 9:41 left`, `job 13 PENDING (Resources)` (the state is SLURM's word). */
export function jobLine(j: IJob, trans: TranslationBundle = UNTRANSLATED): string {
  let line = trans.__('job %1 %2', j.job_id, j.state);
  if (j.reason) {
    line += ` (${j.reason})`;
  }
  if (j.node && j.state !== 'PENDING') {
    line += trans.__(' on %1', j.node);
  }
  if (j.time_left) {
    line += trans.__(' · %1 left', j.time_left);
  }
  return line;
}

/** A cluster's size, one figure each, every number with what it counts. */
export function clusterParts(c: ICluster, trans: TranslationBundle = UNTRANSLATED): string[] {
  const parts = [trans._n('%1 worker', '%1 workers', c.workers), trans._n('%1 thread', '%1 threads', c.threads)];
  if (c.memory) {
    parts.push(trans.__('%1 memory', formatBytes(c.memory)));
  }
  if (c.gpus && c.gpus.length) {
    parts.push(trans.__('GPUs %1', c.gpus.join(',')));
  }
  if (c.adapt) {
    parts.push(trans.__('adapt %1', c.adapt));
  }
  return parts;
}

/** The same as one line: `2 workers · 4 threads · 8.0 GiB memory · adapt 1:4`. */
export function clusterSummary(c: ICluster, trans: TranslationBundle = UNTRANSLATED): string {
  return clusterParts(c, trans).join(' · ');
}

/** A cluster's state in words (the server's status names; unknown ones as they are; runs: pipelines/runs.ts). */
export function statusLabel(status: string | null | undefined, trans: TranslationBundle = UNTRANSLATED): string {
  switch (status) {
    case 'running':
      return trans.__('running');
    case 'starting':
      return trans.__('starting');
    case 'stopped':
      return trans.__('stopped');
    case 'unreachable':
      return trans.__('unreachable');
    case 'unknown':
      return trans.__('unknown');
    default:
      return status ?? '?';
  }
}

export function hours(value: number | undefined | null): string {
  const h = Number(value) || 0;
  return h >= 10 ? h.toFixed(1) : h >= 0.1 ? h.toFixed(2) : h.toFixed(3);
}

/** `1m 05s`, `2h 03m`, `12s`: a short duration for the idle clock. */
export function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) {
    return `${s}s`;
  }
  if (s < 3600) {
    return `${Math.floor(s / 60)}m ${String(s % 60).padStart(2, '0')}s`;
  }
  return `${Math.floor(s / 3600)}h ${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

/**
 * What a cluster used so far, one labelled figure each: `0.012 worker-h`, `0.048 core-h`,
 * `0.05 GB-h memory`, and `GPU-h` where the cluster has GPUs or used some.
 */
export function costParts(
  cost: ICost | null | undefined,
  hasGpus = true,
  trans: TranslationBundle = UNTRANSLATED
): string[] | null {
  if (!cost) {
    return null;
  }
  const parts = [trans.__('%1 worker-h', hours(cost.worker_hours)), trans.__('%1 core-h', hours(cost.core_hours))];
  if (hasGpus || (cost.gpu_hours ?? 0) > 0) {
    parts.push(trans.__('%1 GPU-h', hours(cost.gpu_hours)));
  }
  parts.push(trans.__('%1 GB-h memory', hours(cost.memory_gb_hours)));
  return parts;
}

/** The same as one line: `0.012 worker-h · 0.048 core-h · 0.000 GPU-h · 0.05 GB-h memory`. */
export function costLine(
  cost: ICost | null | undefined,
  hasGpus = true,
  trans: TranslationBundle = UNTRANSLATED
): string | null {
  return costParts(cost, hasGpus, trans)?.join(' · ') ?? null;
}

/**
 * The idle clock, when an idle timeout is set: `idle 42s · stops in 4m 18s (at 14:05:00)`,
 * or `busy · stops after 5m idle` while it works. `now` is epoch seconds (the caller's clock
 * ticks it between polls); the figures' own `as_of` is used when it is later.
 */
export function idleLine(
  cost: ICost | null | undefined,
  now: number = Date.now() / 1000,
  trans: TranslationBundle = UNTRANSLATED
): string | null {
  if (!cost || !cost.idle_timeout) {
    return null;
  }
  const timeout = cost.idle_timeout;
  if (!cost.idle_since) {
    return trans.__('busy · stops after %1 idle', formatDuration(timeout));
  }
  const idle = Math.max(0, Math.max(now, cost.as_of ?? 0) - cost.idle_since);
  const at = new Date((cost.idle_since + timeout) * 1000).toLocaleTimeString();
  return trans.__('idle %1 · stops in %2 (at %3)', formatDuration(idle), formatDuration(timeout - idle), at);
}

/** A run's steps as a list, whatever shape the record uses. */
export function runSteps(run: IRun): Array<{ name: string } & IRunStep> {
  const steps = run.steps;
  if (!steps) {
    return [];
  }
  if (Array.isArray(steps)) {
    return steps.map((s, i) => ({ name: (s as any).name ?? String(i), ...s }));
  }
  return Object.entries(steps).map(([name, s]) => ({ name, ...s }));
}

/** The executed notebook of a step, as a path below the server root (null: not openable). */
export function stepNotebookPath(step: IRunStep): string | null {
  return step.notebook_path ?? null;
}

type Section<T> = { data?: T; error?: string };

/** Samples kept for the charts: 10 minutes at the sampler's default 1 s. */
export const HISTORY = 600;

/** Everything the panel shows; one poll fills it. */
export class PanelModel {
  devices: Section<IInventory> = {};
  metrics: Section<IGpuMetrics> = {};
  clusters: Section<ICluster[]> = {};
  runs: Section<IRuns> = {};
  /** Loaded when a dialog needs it, not on every poll: backends change with installs only. */
  backends: Section<IBackend[]> = {};
  /** The backend the server's `auto` picks on this machine (with the backends; null: not said). */
  autoBackend: string | null = null;
  extensionMissing: string | null = null;
  readonly busy = new Map<string, string>(); // cluster name -> what is being done
  visible = false; // set by the panel as it is shown and hidden
  /** Open panels (charts, dashboard panes) that need fresh data even while the sidebar is hidden. */
  watchers = 0;
  /** Metrics samples, oldest first (at most HISTORY), for the charts. */
  readonly history: IGpuMetrics[] = [];
  /** Each cluster's individual dashboard plots, loaded when asked for. */
  readonly plots = new Map<string, Section<IPlotList>>();
  readonly requester: IRequester;
  readonly poll: Poll;
  /** The push channel, when the model was given a way to open it. */
  readonly stream: EventStream | null;
  private _changed = new Signal<this, void>(this);
  private _pushed = new Signal<this, PushMessage>(this);

  constructor(options: PanelModel.IOptions) {
    this.requester = options.requester;
    this.poll = new Poll({
      factory: () => this.refresh(),
      frequency: Private.frequency(options.interval ?? 5000),
      // Pushed data needs no polling; nobody looks at a hidden panel or a background tab.
      standby: () => this.pushing || (!this.visible && this.watchers === 0) || 'when-hidden',
      name: 'aiinfra:panel'
    });
    this.stream = options.connect
      ? new EventStream({
          connect: options.connect,
          onMessage: message => this.apply(message),
          initialDelay: options.reconnectDelay
        })
      : null;
    this.stream?.stateChanged.connect((_, connected) => {
      if (connected) {
        // Devices are not pushed (they change with hardware only): fetch them once.
        void this.refreshNow(['devices']);
      } else {
        void this.poll.refresh(); // socket down: poll until it is back
      }
      this._changed.emit();
    });
  }

  /** Open the push channel (the poll covers the time until it is up). */
  start(): void {
    this.stream?.start();
  }

  /** True while changes are pushed over the events socket. */
  get pushing(): boolean {
    return this.stream?.connected ?? false;
  }

  get changed(): ISignal<this, void> {
    return this._changed;
  }

  /** Every message pushed over the events socket, events (run-ended) included. */
  get pushed(): ISignal<this, PushMessage> {
    return this._pushed;
  }

  /** Apply one pushed message. */
  apply(message: PushMessage): void {
    this._pushed.emit(message);
    if (message.type === 'clusters') {
      this.clusters = { data: message.clusters as ICluster[] };
      const names = new Set(this.clusters.data!.map(c => c.name));
      for (const name of [...this.plots.keys()]) {
        if (!names.has(name)) {
          this.plots.delete(name); // a later cluster of that name may have another dashboard
        }
      }
    } else if (message.type === 'runs') {
      const runs = Array.isArray(message.runs) ? (message.runs as IRun[]) : [];
      this.runs = { data: { available: true, runs, launches: this.runs.data?.launches ?? [] } };
    } else if (message.type === 'metrics') {
      this._setMetrics(message.metrics as IGpuMetrics);
    }
    this.extensionMissing = null;
    this._changed.emit();
  }

  /**
   * Load the individual plots a cluster's dashboard serves, and whether any worker has a
   * GPU to plot (the server asks the registered cluster's dashboard, as its proxy does).
   */
  async loadPlots(name: string): Promise<IPlotList | undefined> {
    try {
      const answer = await this.request<IPlotsAnswer>(['clusters', name, 'plots']);
      this.plots.set(name, { data: plotList(answer) });
    } catch (error) {
      this.plots.set(name, { data: this.plots.get(name)?.data, error: (error as Error).message ?? String(error) });
    }
    this._changed.emit();
    return this.plots.get(name)?.data;
  }

  setInterval(intervalMs: number): void {
    this.poll.frequency = Private.frequency(intervalMs);
  }

  request<T>(path: string[], method = 'GET', body?: unknown): Promise<T> {
    return requestAPI<T>(this.requester, path, method, body);
  }

  /** The cluster of that name as last polled, if any. */
  cluster(name: string): ICluster | undefined {
    return (this.clusters.data ?? []).find(c => c.name === name);
  }

  /** The backend a cluster runs on, when the backends were loaded. */
  backendOf(cluster: ICluster): IBackend | undefined {
    return (this.backends.data ?? []).find(b => b.name === cluster.backend);
  }

  /** Ask the server for its backends (usable here or why not, and their options). */
  async loadBackends(): Promise<IBackend[]> {
    try {
      const data = await this.request<{ backends: IBackend[]; auto?: string | null }>(['backends']);
      this.backends = { data: data.backends };
      this.autoBackend = data.auto ?? null;
    } catch (error) {
      this.backends = { data: this.backends.data, error: (error as Error).message ?? String(error) };
    }
    this._changed.emit();
    return this.backends.data ?? [];
  }

  /** Fetch now, whether pushed or polled (after a change made here, or the refresh button). */
  async refreshNow(only?: Private.SectionName[]): Promise<void> {
    try {
      await this.refresh(only);
    } catch {
      // every request failed: the sections say why
    }
  }

  /** One round of requests; rejects (so the poll backs off) when every one failed. */
  async refresh(only?: Private.SectionName[]): Promise<void> {
    const calls = Private.CALLS.filter(([key]) => !only || only.includes(key));
    const results = await Promise.allSettled(calls.map(([, path]) => this.request<any>(path)));
    let failures = 0;
    this.extensionMissing = null;
    const sections = this as unknown as Record<Private.SectionName, Section<unknown>>;
    results.forEach((result, i) => {
      const key = calls[i][0];
      if (result.status === 'fulfilled') {
        const value = key === 'clusters' ? result.value.clusters : result.value;
        if (key === 'metrics') {
          this._setMetrics(value);
        } else {
          sections[key] = { data: value };
        }
      } else {
        failures += 1;
        const error = result.reason as APIError;
        if (error.extensionMissing) {
          this.extensionMissing = error.message;
        }
        sections[key] = { data: sections[key].data, error: error.message ?? String(error) };
      }
    });
    this._changed.emit();
    if (failures === calls.length) {
      throw new Error('aiinfra: every request failed');
    }
  }

  setBusy(name: string, what: string | null): void {
    if (what) {
      this.busy.set(name, what);
    } else {
      this.busy.delete(name);
    }
    this._changed.emit();
  }

  private _setMetrics(value: IGpuMetrics): void {
    this.metrics = { data: value };
    const last = this.history[this.history.length - 1];
    if (value && value.timestamp !== null && value.timestamp !== last?.timestamp) {
      this.history.push(value);
      if (this.history.length > HISTORY) {
        this.history.splice(0, this.history.length - HISTORY);
      }
    }
  }

  dispose(): void {
    this.stream?.dispose();
    this.poll.dispose();
    Signal.clearData(this);
  }
}

export namespace PanelModel {
  export interface IOptions {
    /** How requests reach the server (ServerConnection in the lab, a fake in tests). */
    requester: IRequester;
    /** Poll interval in milliseconds while the panel is visible and nothing is pushed (default 5000). */
    interval?: number;
    /** Open the events socket (the model then polls only while it is down). */
    connect?: () => ISocketLike;
    /** First reconnection delay of the socket in ms (default 500, doubling up to 30 s). */
    reconnectDelay?: number;
  }
}

namespace Private {
  export type SectionName = 'devices' | 'metrics' | 'clusters' | 'runs';

  export const CALLS: Array<[SectionName, string[]]> = [
    ['devices', ['devices']],
    ['metrics', ['metrics', 'gpu']],
    ['clusters', ['clusters']],
    ['runs', ['pipelines', 'runs']]
  ];

  export function frequency(interval: number) {
    return { interval, backoff: true, max: 60000 };
  }
}
