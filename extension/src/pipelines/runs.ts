/**
 * The run view's data: run records as the server lists them
 * (`GET aiinfra/api/pipelines/runs`, each `runs/<run_id>/run.json` plus
 * server-side paths), grouped by pipeline, laid out as a DAG, and the actions
 * on a run (cancel, re-run failed steps).
 *
 * Pure code and a Poll: no JupyterLab runtime imports, so jest can test it.
 */

import { TranslationBundle } from '@jupyterlab/translation';
import { Poll } from '@lumino/polling';
import { ISignal, Signal } from '@lumino/signaling';

import { IRequester, requestAPI } from '../api';
import { bundle } from './i18n';
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
  /** The worker's host (placement.where) and, on SLURM, its node. */
  host?: string | null;
  slurm_node?: string | null;
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
  /** Why the run stopped before (or between) its steps: a cluster not found, say. */
  error?: string | null;
  /** Who started the run (issue 26): `manual`, `lab` or `schedule` (with its name). */
  trigger?: { kind?: string | null; schedule?: string | null } | null;
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

/** A launch's log as the server serves it: its last part, and whether earlier lines were left out. */
export interface ILaunchLog {
  launch: string;
  text: string;
  truncated: boolean;
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
export function rerunBody(
  run: IRunRecord,
  trans: TranslationBundle = bundle()
): { body?: Record<string, unknown>; error?: string } {
  const only = failedSteps(run);
  if (!only.length) {
    return { error: trans.__('run %1 has no failed step', run.run_id) };
  }
  const same = sameRun(run, trans);
  return same.body ? { body: { pipeline: same.body.pipeline, only, ...same.body } } : same;
}

/** A status word as the view shows it (the record's words, translated). */
export function statusLabel(status: string | null | undefined, trans: TranslationBundle = bundle()): string {
  switch (status) {
    case 'ok':
      return trans.__('ok');
    case 'failed':
      return trans.__('failed');
    case 'running':
      return trans.__('running');
    case 'pending':
      return trans.__('pending');
    case 'cached':
      return trans.__('cached');
    case 'skipped':
      return trans.__('skipped');
    case 'interrupted':
      return trans.__('interrupted');
    case 'cancelled':
      return trans.__('cancelled');
    case 'finished':
      return trans.__('finished');
    case null:
    case undefined:
    case '':
      return '?';
    default:
      return status;
  }
}

/** Seconds as the view shows them. */
export function formatSeconds(s: number | null | undefined, trans: TranslationBundle = bundle()): string {
  if (typeof s !== 'number' || !isFinite(s)) {
    return '';
  }
  if (s < 60) {
    return trans.__('%1 s', s.toFixed(1));
  }
  const m = Math.floor(s / 60);
  return trans.__('%1 min %2 s', m, Math.round(s - 60 * m));
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

/** Two significant digits, plain decimals: 0.52, 3.4, 27, 140. */
function significant(value: number): string {
  if (value === 0) {
    return '0';
  }
  const decimals = Math.min(6, Math.max(0, 1 - Math.floor(Math.log10(Math.abs(value)))));
  const rounded = Number(value.toPrecision(2));
  const text = rounded >= 100 ? rounded.toFixed(0) : rounded.toFixed(decimals);
  return text.includes('.') ? text.replace(/0+$/, '').replace(/\.$/, '') : text;
}

/**
 * An amount of `what`-hours in the unit a person reads at a glance: seconds
 * below a minute, minutes below an hour, then hours; two significant digits
 * ("0.52 core-s", "3.4 core-min", "27 GPU-h").
 */
export function formatAmount(hours: number, what: string, trans: TranslationBundle = bundle()): string {
  const seconds = hours * 3600;
  if (seconds < 60) {
    return trans.__('%1 %2-s', significant(seconds), what);
  }
  if (seconds < 3600) {
    return trans.__('%1 %2-min', significant(seconds / 60), what);
  }
  return trans.__('%1 %2-h', significant(hours), what);
}

/**
 * A step's (or a run's) cost cell: the core time it held, and the GPU time
 * when it held GPUs; or why there is none.
 */
export function formatCost(cost: IStepCost | null | undefined, trans: TranslationBundle = bundle()): string {
  if (!cost) {
    return '';
  }
  if (cost.error) {
    return trans.__('not measured');
  }
  if (cost.cached) {
    return trans.__('cached');
  }
  const parts: string[] = [];
  if (cost.gpu_hours) {
    parts.push(formatAmount(cost.gpu_hours, trans.__('GPU'), trans));
  }
  parts.push(formatAmount(cost.core_hours ?? 0, trans.__('core'), trans));
  return parts.join(' · ');
}

/** The exact figures behind a cost cell (its tooltip), in hours as run.json has them. */
export function costTitle(cost: IStepCost | null | undefined, trans: TranslationBundle = bundle()): string {
  if (!cost || cost.cached) {
    return '';
  }
  if (cost.error) {
    return cost.error;
  }
  return trans.__(
    '%1 GPU-h, %2 core-h, %3 worker-h, %4 GB-h of memory held; %5 CPU-h used',
    formatHours(cost.gpu_hours ?? 0),
    formatHours(cost.core_hours ?? 0),
    formatHours(cost.worker_hours ?? 0),
    formatHours(cost.memory_gb_hours ?? 0),
    formatHours(cost.cpu_hours ?? 0)
  );
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

const ADDRESS = /^([a-z]+):\/\/(.*)$/;

/**
 * The worker a step ran on, as a person names it: its host and worker name
 * ("gpu-node-3 · worker 0"), not its address. Without a recorded name the
 * address's own part stands in ("in-process worker 4", "port 40123").
 */
export function workerLabel(step: IStepRecord, trans: TranslationBundle = bundle()): string {
  const address = step.worker ?? '';
  const name = step.worker_name && !ADDRESS.test(step.worker_name) ? step.worker_name : '';
  const host = step.slurm_node || step.host || '';
  let who = '';
  if (name) {
    who = /^\d+$/.test(name) ? trans.__('worker %1', name) : name;
  } else if (address) {
    const m = ADDRESS.exec(address);
    if (!m) {
      who = address === 'local' ? trans.__('this process') : address;
    } else if (m[1] === 'inproc') {
      who = trans.__('in-process worker %1', m[2].split('/').pop() ?? '');
    } else {
      const hostPort = m[2].replace(/\/.*$/, '');
      const port = /:(\d+)$/.exec(hostPort);
      who = host && port ? trans.__('port %1', port[1]) : hostPort;
    }
  }
  return [host, who].filter(Boolean).join(' · ');
}

/** Where a step ran and on what: the worker and its devices (GPUs as cuda:N). */
export function placement(step: IStepRecord, trans: TranslationBundle = bundle()): string {
  const parts: string[] = [];
  const worker = workerLabel(step, trans);
  if (worker) {
    parts.push(worker);
  }
  const devices = (step.devices ?? []).filter(Boolean);
  if (devices.length) {
    parts.push(devices.join(','));
  }
  return parts.join(' · ');
}

/** The schedule that started a run, or null (issue 26: `trigger: {kind: schedule, schedule}`). */
export function scheduleOf(run: IRunRecord): string | null {
  const trigger = run.trigger;
  if (!trigger || trigger.kind !== 'schedule') {
    return null;
  }
  return trigger.schedule || '?';
}

/** Statuses a run can be resumed from: its failed or interrupted steps are run again. */
export const RESUMABLE = ['failed', 'interrupted', 'cancelled'];

/**
 * Whether Resume applies to `run`: it ended without finishing, it is the
 * latest run of its pipeline (`--resume` continues the last run), and it got
 * as far as its cluster (else "Run pipeline…" with a cluster that exists).
 */
export function canResume(run: IRunRecord, runs: IRunRecord[]): boolean {
  if (!RESUMABLE.includes(run.status ?? '') || !pipelinePath(run)) {
    return false;
  }
  if (run.error && !run.cluster) {
    return false; // it never reached a cluster (not registered, say): its record cannot name it again
  }
  const mine = pipelinePath(run);
  const start = started(run);
  return !runs.some(r => r !== run && pipelinePath(r) === mine && started(r) > start);
}

/** The same pipeline, parameters and cluster as `run`: what resume and run-from keep. */
function sameRun(run: IRunRecord, trans: TranslationBundle): { body?: Record<string, unknown>; error?: string } {
  const pipeline = pipelinePath(run);
  if (!pipeline) {
    return { error: trans.__('run %1: its pipeline is outside the Jupyter root', run.run_id) };
  }
  const body: Record<string, unknown> = { pipeline };
  const params = runParams(run);
  if (params) {
    body.params = params;
  }
  if (run.cluster && !run.cluster.embedded && run.cluster.name) {
    body.cluster = run.cluster.name;
  }
  return { body };
}

/** `POST aiinfra/api/pipelines/runs` with `resume: true`: the failed and interrupted steps and their downstream. */
export function resumeBody(
  run: IRunRecord,
  trans: TranslationBundle = bundle()
): { body?: Record<string, unknown>; error?: string } {
  const same = sameRun(run, trans);
  return same.body ? { body: { ...same.body, resume: true } } : same;
}

/** `POST aiinfra/api/pipelines/runs` with `from: NODE`: that node and its downstream, cache or not. */
export function fromBody(
  run: IRunRecord,
  node: string,
  trans: TranslationBundle = bundle()
): { body?: Record<string, unknown>; error?: string } {
  const step = run.steps?.[node];
  if (!step) {
    return { error: trans.__('run %1 has no step %2', run.run_id, node) };
  }
  const same = sameRun(run, trans);
  // `from` takes step names and expanded names alike: from train[lr=0.1] runs that node only.
  return same.body ? { body: { ...same.body, from: node } } : same;
}

/** The run folder an executed notebook lies in (`<pipeline folder>/runs/<run_id>/x.ipynb`), or null. */
export function executedRun(path: string): { runId: string; folder: string; name: string } | null {
  const parts = path.split('/');
  if (parts.length < 3 || parts[parts.length - 3] !== 'runs' || !parts[parts.length - 1].endsWith('.ipynb')) {
    return null;
  }
  const runId = parts[parts.length - 2];
  if (!/^\d{8}-\d{6}/.test(runId)) {
    return null; // a folder that happens to be named runs/: not a run's
  }
  return { runId, folder: parts.slice(0, -1).join('/'), name: parts[parts.length - 1] };
}

/** The source notebook of a step (below the server root), from the run's folder and the step's `source`. */
export function sourcePath(run: IRunRecord, step: IStepRecord): string {
  if (!run.folder || !step.source) {
    return '';
  }
  const folder = run.folder.split('/').slice(0, -2).join('/');
  return folder ? `${folder}/${step.source}` : step.source;
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

export const NODE_W = 170;
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
  readonly trans: TranslationBundle;

  constructor(options: RunsModel.IOptions) {
    this.requester = options.requester;
    this.trans = options.trans ?? bundle();
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
    return this._startFrom(rerunBody(run, this.trans));
  }

  /** Resume `run`: its failed and interrupted steps and everything downstream of them. */
  async resume(run: IRunRecord): Promise<ILaunchRecord> {
    return this._startFrom(resumeBody(run, this.trans));
  }

  /** Run `node`'s step of `run` and everything downstream of it, whatever the cache holds. */
  async runFrom(run: IRunRecord, node: string): Promise<ILaunchRecord> {
    return this._startFrom(fromBody(run, node, this.trans));
  }

  /** The log of a launch this server started (`GET aiinfra/api/pipelines/launches/<id>/log`). */
  async launchLog(launch: string): Promise<ILaunchLog> {
    return requestAPI<ILaunchLog>(this.requester, ['pipelines', 'launches', launch, 'log']);
  }

  private _startFrom(made: { body?: Record<string, unknown>; error?: string }): Promise<ILaunchRecord> {
    if (!made.body) {
      return Promise.reject(new Error(made.error));
    }
    return this.start(made.body);
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
    /** The strings of errors the model raises (English without one). */
    trans?: TranslationBundle;
  }
}
