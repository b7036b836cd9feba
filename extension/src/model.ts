/**
 * The panel's data and the pure helpers that shape it (tested with jest).
 */

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

export const BACKENDS = ['auto', 'local', 'cuda', 'address'] as const;

/** The start-cluster form as typed by the user (strings from inputs). */
export interface IStartForm {
  name: string;
  backend: string;
  workers: string;
  threads: string;
  memory: string;
  gpus: string;
  address: string;
}

export function emptyForm(defaultBackend = 'auto'): IStartForm {
  return { name: '', backend: defaultBackend, workers: '', threads: '', memory: '', gpus: '', address: '' };
}

/**
 * Turn the form into the POST body (the CLI's option names); empty inputs are
 * left out so the server's defaults apply. Returns an error naming the field
 * for what can be told here; the server validates everything again.
 */
export function formToBody(form: IStartForm): { body?: Record<string, unknown>; error?: string } {
  const body: Record<string, unknown> = { backend: form.backend || 'auto' };
  const name = form.name.trim();
  if (name) {
    body.name = name;
  }
  for (const key of ['workers', 'threads'] as const) {
    const text = form[key].trim();
    if (!text) {
      continue;
    }
    if (!/^\d+$/.test(text) || Number(text) < 1) {
      return { error: `${key}: got ${JSON.stringify(text)}; allowed: an integer >= 1` };
    }
    body[key] = Number(text);
  }
  for (const key of ['memory', 'gpus', 'address'] as const) {
    const text = form[key].trim();
    if (text) {
      body[key] = text;
    }
  }
  return { body };
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
