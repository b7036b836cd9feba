/**
 * The panel's data: what the server's routes return, the model one poll
 * fills, and the pure helpers that shape it for display.
 */

import { Poll } from '@lumino/polling';
import { ISignal, Signal } from '@lumino/signaling';

import { APIError, IRequester, requestAPI } from './api';
import { IBackend } from './backends';

export interface IGpuSample {
  index: number;
  name?: string | null;
  uuid?: string | null;
  utilization?: number | null;
  memory_used?: number | null;
  memory_total?: number | null;
  temperature?: number | null;
  error?: string;
}

export interface IGpuMetrics {
  gpus: IGpuSample[];
  reason: string | null;
  timestamp: number | null;
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
    'from aiinfra_magics.clusters import manager\n' +
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

/** One line describing a cluster's size. */
/** `job 12 RUNNING on n1 · 9:41 left`, `job 13 PENDING (Resources)`. */
export function jobLine(j: IJob): string {
  let line = `job ${j.job_id} ${j.state}`;
  if (j.reason) {
    line += ` (${j.reason})`;
  }
  if (j.node && j.state !== 'PENDING') {
    line += ` on ${j.node}`;
  }
  if (j.time_left) {
    line += ` · ${j.time_left} left`;
  }
  return line;
}

export function clusterSummary(c: ICluster): string {
  const parts = [
    `${c.workers} worker${c.workers === 1 ? '' : 's'}`,
    `${c.threads} thread${c.threads === 1 ? '' : 's'}`
  ];
  if (c.memory) {
    parts.push(formatBytes(c.memory));
  }
  if (c.gpus && c.gpus.length) {
    parts.push(`GPUs ${c.gpus.join(',')}`);
  }
  if (c.adapt) {
    parts.push(`adapt ${c.adapt}`);
  }
  return parts.join(' · ');
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

/** Everything the panel shows; one poll fills it. */
export class PanelModel {
  devices: Section<IInventory> = {};
  metrics: Section<IGpuMetrics> = {};
  clusters: Section<ICluster[]> = {};
  runs: Section<IRuns> = {};
  /** Loaded when a dialog needs it, not on every poll: backends change with installs only. */
  backends: Section<IBackend[]> = {};
  extensionMissing: string | null = null;
  readonly busy = new Map<string, string>(); // cluster name -> what is being done
  visible = false; // set by the panel as it is shown and hidden
  readonly requester: IRequester;
  readonly poll: Poll;
  private _changed = new Signal<this, void>(this);

  constructor(options: PanelModel.IOptions) {
    this.requester = options.requester;
    this.poll = new Poll({
      factory: () => this.refresh(),
      frequency: Private.frequency(options.interval ?? 5000),
      // Nobody looks at a hidden panel or a background tab: do not poll then.
      standby: () => !this.visible || 'when-hidden',
      name: 'aiinfra:panel'
    });
  }

  get changed(): ISignal<this, void> {
    return this._changed;
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
      const data = await this.request<{ backends: IBackend[] }>(['backends']);
      this.backends = { data: data.backends };
    } catch (error) {
      this.backends = { data: this.backends.data, error: (error as Error).message ?? String(error) };
    }
    this._changed.emit();
    return this.backends.data ?? [];
  }

  /** One round of requests; rejects (so the poll backs off) when every one failed. */
  async refresh(): Promise<void> {
    const calls: Array<[Private.SectionName, string[]]> = [
      ['devices', ['devices']],
      ['metrics', ['metrics', 'gpu']],
      ['clusters', ['clusters']],
      ['runs', ['pipelines', 'runs']]
    ];
    const results = await Promise.allSettled(calls.map(([, path]) => this.request<any>(path)));
    let failures = 0;
    this.extensionMissing = null;
    const sections = this as unknown as Record<Private.SectionName, Section<unknown>>;
    results.forEach((result, i) => {
      const key = calls[i][0];
      if (result.status === 'fulfilled') {
        const value = key === 'clusters' ? result.value.clusters : result.value;
        sections[key] = { data: value };
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

  dispose(): void {
    this.poll.dispose();
    Signal.clearData(this);
  }
}

export namespace PanelModel {
  export interface IOptions {
    /** How requests reach the server (ServerConnection in the lab, a fake in tests). */
    requester: IRequester;
    /** Poll interval in milliseconds while the panel is visible (default 5000). */
    interval?: number;
  }
}

namespace Private {
  export type SectionName = 'devices' | 'metrics' | 'clusters' | 'runs';

  export function frequency(interval: number) {
    return { interval, backoff: true, max: 60000 };
  }
}
