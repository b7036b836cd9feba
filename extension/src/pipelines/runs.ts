/**
 * The run view's data: run records as the server lists them
 * (`GET aiinfra/api/pipelines/runs`, each `runs/<run_id>/run.json` plus
 * server-side paths), grouped by pipeline, laid out as a DAG, and the actions
 * on a run (cancel, re-run failed steps).
 *
 * Pure code and a Poll: no JupyterLab runtime imports, so jest can test it.
 */

import { Poll } from '@lumino/polling';
import { ISignal, Signal } from '@lumino/signaling';

import { IRequester, requestAPI } from '../api';
import { JSONValue } from './spec';

export interface IStepRecord {
  step?: string;
  status?: string;
  upstream?: string[];
  products?: string[];
  notebook?: string | null;
  notebook_path?: string | null;
  source?: string;
  attempts?: number;
  duration?: number | null;
  start?: number | null;
  end?: number | null;
  worker?: string | null;
  worker_name?: string | null;
  devices?: string[];
  peak_rss?: number | null;
  error?: string | null;
  kind?: string | null;
  cell?: number | null;
  reason?: string | null;
  cost?: IStepCost | null;
}

/** What a step held while it ran (run.json's `cost`; the cluster's figure names). */
export interface IStepCost {
  worker_hours?: number;
  core_hours?: number;
  gpu_hours?: number;
  memory_gb_hours?: number;
  /** Measured: CPU time of the step's kernel. */
  cpu_hours?: number;
  /** Came from the cache: nothing held in this run. */
  cached?: boolean;
  /** The accounting failed on the worker (the step itself ran). */
  error?: string;
  /** Run totals only: how many steps held a worker. */
  steps?: number;
}

export interface IRunRecord {
  run_id: string;
  pipeline?: string;
  file?: string;
  folder?: string | null;
  status?: string;
  start?: number | null;
  end?: number | null;
  duration?: number | null;
  cluster?: { name?: string | null; embedded?: boolean; workers?: number } | null;
  params?: unknown;
  overrides?: Array<{ step: string | null; key: string; value: JSONValue }>;
  only?: string | string[] | null;
  force?: boolean;
  steps?: Record<string, IStepRecord>;
  cost?: IStepCost | null;
}

export interface ILaunchRecord {
  launch: string;
  pipeline: string;
  status: string;
  exit_code: number | null;
  run_id?: string | null;
  started?: number;
  log?: string;
}

export interface IRunsReply {
  available: boolean;
  reason?: string;
  runs: IRunRecord[];
  launches: ILaunchRecord[];
}

/** The states a step ends in. */
export const FINAL = ['ok', 'cached', 'failed', 'skipped'];

export type Step = IStepRecord & { name: string };

export function steps(run: IRunRecord): Step[] {
  return Object.entries(run.steps ?? {}).map(([name, s]) => ({ name, ...s }));
}

/**
 * A run that did no work: every step was taken from the cache (or not
 * selected). Shown as "cached", folded under the run that did the work.
 */
export function isFullyCached(run: IRunRecord): boolean {
  const all = steps(run);
  return (
    run.status === 'ok' &&
    all.some(s => s.status === 'cached') &&
    all.every(s => s.status === 'cached' || s.status === 'skipped')
  );
}

/** The pipeline.yaml of a run as a path below the server root ('' when not known). */
export function pipelinePath(run: IRunRecord): string {
  const file = (run.file ?? '').split('/').pop() || 'pipeline.yaml';
  if (!run.folder) {
    return '';
  }
  const parts = run.folder.split('/'); // <pipeline folder>/runs/<run_id>
  const folder = parts.slice(0, -2).join('/');
  return folder ? `${folder}/${file}` : file;
}

/** A row of the runs list: a run that did work, or a fold of consecutive fully cached runs. */
export type RunRow = { kind: 'run'; run: IRunRecord } | { kind: 'cached'; runs: IRunRecord[] };

export interface IRunGroup {
  /** The pipeline.yaml below the server root (or the run's file when outside it). */
  pipeline: string;
  name: string;
  rows: RunRow[];
  latest: number;
}

function started(run: IRunRecord): number {
  return typeof run.start === 'number' ? run.start : 0;
}

/** Runs grouped by pipeline, the group with the latest run first, each group latest first. */
export function groupRuns(runs: IRunRecord[]): IRunGroup[] {
  const groups = new Map<string, IRunGroup>();
  const sorted = [...runs].sort((a, b) => started(b) - started(a));
  for (const run of sorted) {
    const key = pipelinePath(run) || run.file || run.pipeline || '?';
    let group = groups.get(key);
    if (!group) {
      group = { pipeline: key, name: run.pipeline ?? key, rows: [], latest: started(run) };
      groups.set(key, group);
    }
    const last = group.rows[group.rows.length - 1];
    if (isFullyCached(run)) {
      if (last && last.kind === 'cached') {
        last.runs.push(run);
      } else {
        group.rows.push({ kind: 'cached', runs: [run] });
      }
    } else {
      group.rows.push({ kind: 'run', run });
    }
  }
  return [...groups.values()].sort((a, b) => b.latest - a.latest);
}

/** Steps that failed (expanded names): what "re-run failed steps" runs. */
export function failedSteps(run: IRunRecord): string[] {
  return steps(run)
    .filter(s => s.status === 'failed')
    .map(s => s.name);
}

/** The parameters a run was started with, as a POST body's `params` (typed). */
export function runParams(run: IRunRecord): Record<string, JSONValue> | undefined {
  if (Array.isArray(run.overrides) && run.overrides.length) {
    const out: Record<string, JSONValue> = {};
    for (const o of run.overrides) {
      out[o.step ? `${o.step}.${o.key}` : o.key] = o.value;
    }
    return out;
  }
  const p = run.params;
  if (p && typeof p === 'object' && !Array.isArray(p) && Object.keys(p).length) {
    return p as Record<string, JSONValue>;
  }
  return undefined;
}

/** The body that re-runs a run's failed steps only (same pipeline, parameters and cluster). */
export function rerunBody(run: IRunRecord): { body?: Record<string, unknown>; error?: string } {
  const only = failedSteps(run);
  const pipeline = pipelinePath(run);
  if (!only.length) {
    return { error: `run ${run.run_id} has no failed step` };
  }
  if (!pipeline) {
    return { error: `run ${run.run_id}: its pipeline is outside the Jupyter root` };
  }
  const body: Record<string, unknown> = { pipeline, only };
  const params = runParams(run);
  if (params) {
    body.params = params;
  }
  if (run.cluster && !run.cluster.embedded && run.cluster.name) {
    body.cluster = run.cluster.name;
  }
  return { body };
}

/** Seconds as the view shows them. */
export function formatSeconds(s: number | null | undefined): string {
  if (typeof s !== 'number' || !isFinite(s)) {
    return '';
  }
  if (s < 60) {
    return `${s.toFixed(1)} s`;
  }
  const m = Math.floor(s / 60);
  return `${m} min ${Math.round(s - 60 * m)} s`;
}

/** Hours for tables, as the CLI writes them: 4 significant digits, plain decimals (no 5.6e-6). */
export function formatHours(value: number | null | undefined): string {
  if (typeof value !== 'number' || !isFinite(value)) {
    return '';
  }
  if (value === 0) {
    return '0';
  }
  const decimals = Math.min(12, Math.max(0, 3 - Math.floor(Math.log10(Math.abs(value)))));
  const text = value.toFixed(decimals);
  return text.includes('.') ? text.replace(/0+$/, '').replace(/\.$/, '') : text;
}

/** A step's (or a run's) cost cell: the GPU-hours and core-hours it held, or why none. */
export function formatCost(cost: IStepCost | null | undefined): string {
  if (!cost) {
    return '';
  }
  if (cost.error) {
    return 'not measured';
  }
  if (cost.cached) {
    return 'cached';
  }
  return `${formatHours(cost.gpu_hours ?? 0)} GPU-h · ${formatHours(cost.core_hours ?? 0)} core-h`;
}

/** A step's duration: recorded, or running for so long (`now` in seconds since the epoch). */
export function stepDuration(step: IStepRecord, now: number): number | null {
  if (typeof step.duration === 'number') {
    return step.duration;
  }
  if (step.status === 'running' && typeof step.start === 'number') {
    return Math.max(0, now - step.start);
  }
  return null;
}

/** Where a step ran and on what: the worker and its devices (GPUs as cuda:N). */
export function placement(step: IStepRecord): string {
  const parts: string[] = [];
  if (step.worker_name || step.worker) {
    parts.push(String(step.worker_name ?? step.worker));
  }
  const devices = (step.devices ?? []).filter(Boolean);
  if (devices.length) {
    parts.push(devices.join(','));
  }
  return parts.join(' · ');
}

export interface ILayoutNode {
  name: string;
  status: string;
  x: number;
  y: number;
}

export interface IDagLayout {
  nodes: ILayoutNode[];
  edges: Array<{ from: string; to: string }>;
  width: number;
  height: number;
}

export const NODE_W = 150;
export const NODE_H = 30;
const GAP_X = 40;
const GAP_Y = 14;

/** Left to right by longest upstream path; one column per depth, nodes in record order. */
export function dagLayout(run: IRunRecord): IDagLayout {
  const all = steps(run);
  const depth = new Map<string, number>();
  const visit = (name: string, seen: Set<string>): number => {
    const known = depth.get(name);
    if (known !== undefined) {
      return known;
    }
    if (seen.has(name)) {
      return 0; // a cycle cannot be in a record; do not loop if one is
    }
    seen.add(name);
    const ups = (run.steps?.[name]?.upstream ?? []).filter(u => run.steps && u in run.steps);
    const d = ups.length ? 1 + Math.max(...ups.map(u => visit(u, seen))) : 0;
    depth.set(name, d);
    return d;
  };
  all.forEach(s => visit(s.name, new Set()));
  const rows = new Map<number, number>();
  const nodes = all.map(s => {
    const column = depth.get(s.name) ?? 0;
    const row = rows.get(column) ?? 0;
    rows.set(column, row + 1);
    return {
      name: s.name,
      status: s.status ?? 'pending',
      x: column * (NODE_W + GAP_X),
      y: row * (NODE_H + GAP_Y)
    };
  });
  const edges = all.flatMap(s =>
    (s.upstream ?? []).filter(u => run.steps && u in run.steps).map(u => ({ from: u, to: s.name }))
  );
  const columns = Math.max(0, ...[...rows.keys()].map(c => c + 1));
  const height = Math.max(0, ...[...rows.values()]);
  return {
    nodes,
    edges,
    width: columns ? columns * NODE_W + (columns - 1) * GAP_X : 0,
    height: height ? height * NODE_H + (height - 1) * GAP_Y : 0
  };
}

/** A failed cell as the executed notebook holds it. */
export interface ICellFailure {
  index: number;
  source: string;
  ename: string;
  evalue: string;
  traceback: string;
}

// eslint-disable-next-line no-control-regex
const ANSI = /\u001b\[[0-9;]*[A-Za-z]/g;

/** The first error output of an executed notebook (papermill stores the failing cell's). */
export function cellFailure(notebook: any, index?: number | null): ICellFailure | null {
  const cells: any[] = notebook?.cells ?? [];
  const order = typeof index === 'number' && cells[index] ? [index, ...cells.keys()] : [...cells.keys()];
  for (const i of order) {
    const cell = cells[i];
    for (const out of cell?.outputs ?? []) {
      if (out.output_type === 'error') {
        const source = Array.isArray(cell.source) ? cell.source.join('') : String(cell.source ?? '');
        return {
          index: i,
          source,
          ename: String(out.ename ?? ''),
          evalue: String(out.evalue ?? ''),
          traceback: (out.traceback ?? []).join('\n').replace(ANSI, '')
        };
      }
    }
  }
  return null;
}

/** All runs of this server's root, refreshed while a run view is open. */
export class RunsModel {
  runs: IRunRecord[] = [];
  launches: ILaunchRecord[] = [];
  error: string | null = null;
  available = true;
  reason = '';
  /** The run (or launch, until its run id is known) the view shows. */
  selected: string | null = null;
  /** Failing cells read from executed notebooks, by notebook path. */
  readonly failures = new Map<string, ICellFailure | null>();
  readonly requester: IRequester;
  readonly poll: Poll;

  constructor(options: RunsModel.IOptions) {
    this.requester = options.requester;
    this._readNotebook = options.readNotebook ?? null;
    this.poll = new Poll({
      factory: () => this.refresh(),
      frequency: { interval: options.interval ?? 2000, backoff: true, max: 30000 },
      standby: () => (this.visible ? 'when-hidden' : true),
      name: 'aiinfra:runs'
    });
  }

  visible = false;

  get changed(): ISignal<this, void> {
    return this._changed;
  }

  async refresh(): Promise<void> {
    try {
      const data = await requestAPI<IRunsReply>(this.requester, ['pipelines', 'runs']);
      this.available = data.available;
      this.reason = data.reason ?? '';
      this.runs = data.runs ?? [];
      this.launches = data.launches ?? [];
      this.error = null;
    } catch (error) {
      this.error = (error as Error).message ?? String(error);
      this._changed.emit();
      throw error;
    }
    this._follow();
    this._changed.emit();
    void this._loadFailures();
  }

  select(id: string | null): void {
    this.selected = id;
    this._follow();
    this._changed.emit();
    void this._loadFailures();
  }

  /** The launch the selection names, while its run has not written a record yet. */
  get launch(): ILaunchRecord | null {
    return this.launches.find(l => l.launch === this.selected) ?? null;
  }

  /** The run the selection names (a launch id resolves once its run id is known). */
  get run(): IRunRecord | null {
    const id = this.selected;
    return this.runs.find(r => r.run_id === id) ?? null;
  }

  /** Whether this server launched the run (and can cancel it) and it still runs. */
  cancellable(run: IRunRecord): boolean {
    return this.launches.some(l => l.run_id === run.run_id && l.status === 'running');
  }

  /** Start a run; selects it (by its launch id until the run id is known). */
  async start(body: Record<string, unknown>): Promise<ILaunchRecord> {
    const launch = await requestAPI<ILaunchRecord>(this.requester, ['pipelines', 'runs'], 'POST', body);
    this.launches = [...this.launches.filter(l => l.launch !== launch.launch), launch];
    this.select(launch.run_id ?? launch.launch);
    await this.poll.refresh();
    return launch;
  }

  async cancel(runId: string): Promise<void> {
    await requestAPI(this.requester, ['pipelines', 'runs', runId], 'DELETE');
    await this.poll.refresh();
  }

  async rerunFailed(run: IRunRecord): Promise<ILaunchRecord> {
    const { body, error } = rerunBody(run);
    if (!body) {
      throw new Error(error);
    }
    return this.start(body);
  }

  dispose(): void {
    this.poll.dispose();
    Signal.clearData(this);
  }

  /** A selected launch becomes its run as soon as the server knows the run id. */
  private _follow(): void {
    const launch = this.launch;
    if (launch?.run_id) {
      this.selected = launch.run_id;
    }
  }

  private async _loadFailures(): Promise<void> {
    const run = this.run;
    if (!run || !this._readNotebook) {
      return;
    }
    for (const step of steps(run)) {
      const path = step.notebook_path;
      if (step.status !== 'failed' || !path || this.failures.has(path)) {
        continue;
      }
      this.failures.set(path, null); // once per notebook, even if reading fails
      try {
        this.failures.set(path, cellFailure(await this._readNotebook(path), step.cell));
        this._changed.emit();
      } catch {
        // the notebook may be gone; the step's one-line error is still shown
      }
    }
  }

  private _changed = new Signal<this, void>(this);
  private _readNotebook: ((path: string) => Promise<any>) | null;
}

export namespace RunsModel {
  export interface IOptions {
    requester: IRequester;
    /** Reads an executed notebook's JSON by path (the contents API in the lab). */
    readNotebook?: (path: string) => Promise<any>;
    /** Poll interval in milliseconds while the view is visible (default 2000). */
    interval?: number;
  }
}
