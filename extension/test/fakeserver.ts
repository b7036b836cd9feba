/**
 * A stand-in for the aiinfra server extension: answers the REST routes the
 * sidebar calls from in-memory state and records every request. Serves both
 * an IRequester (panel tests) and a global fetch (index.ts through the real
 * ServerConnection).
 */

import { IRequester } from '../src/api';
import { IBackend } from '../src/backends';
import { ICluster } from '../src/model';

export type Call = { method: string; path: string; body: any };

export function cluster(name: string, extra: Partial<ICluster> = {}): ICluster {
  return {
    name,
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
    created: 0,
    ...extra
  };
}

/** A payload like GET aiinfra/api/backends on a machine without a GPU. */
export const BACKENDS: IBackend[] = [
  {
    name: 'local',
    description: 'Workers as processes on this machine.',
    usable: true,
    reason: null,
    manages_workers: true,
    options: []
  },
  {
    name: 'cuda',
    description: 'One worker per GPU (dask-cuda).',
    usable: false,
    reason: 'no NVIDIA GPU (NVML not found)',
    manages_workers: true,
    options: [
      { name: 'gpus', flag: '--gpus', type: 'string', help: 'all | N | 0,2', default: null, choices: null },
      { name: 'protocol', flag: '--protocol', type: 'string', help: 'comm protocol', default: 'tcp', choices: ['tcp', 'ucx'] }
    ]
  },
  {
    name: 'address',
    description: 'Attach to a running scheduler.',
    usable: true,
    reason: null,
    manages_workers: false,
    options: [{ name: 'address', flag: '--address', type: 'string', help: 'scheduler URL', default: null, choices: null }]
  },
  {
    name: 'toy',
    description: 'A plugin backend with every option type.',
    usable: true,
    reason: null,
    manages_workers: true,
    options: [
      { name: 'partition', flag: '--partition', type: 'string', help: 'queue', default: 'debug', choices: null },
      { name: 'cores', flag: '--cores', type: 'integer', help: 'cores per job', default: 1, choices: null },
      { name: 'fraction', flag: '--fraction', type: 'number', help: 'a share', default: null, choices: null },
      { name: 'dry_run', flag: '--dry-run', type: 'boolean', help: 'print only', default: false, choices: null },
      { name: 'exclusive', flag: '--exclusive', type: 'boolean', help: 'whole nodes', default: true, choices: null },
      { name: 'rmm_pool', flag: '--rmm-pool', type: 'size', help: 'pool size', default: null, choices: null },
      { name: 'job_extra', flag: '--job-extra', type: 'list', help: 'sbatch lines', default: null, choices: null },
      { name: 'memory', flag: '--memory', type: 'size', help: 'memory per job', default: '1GB', choices: null }
    ]
  }
];

export class FakeServer {
  clusters: ICluster[] = [];
  backends: IBackend[] = BACKENDS;
  /** What each cluster's dashboard lists in individual-plots.json (GET clusters/NAME/plots). */
  plots: Record<string, string> = {
    'Individual Task Stream': '/individual-task-stream',
    'Individual Progress': '/individual-progress',
    'Individual Workers Memory': '/individual-workers-memory',
    'Individual Gpu Memory': '/individual-gpu-memory'
  };
  /** How many of a cluster's workers report a GPU (its dashboard's identity). */
  gpuWorkers = 0;
  /** What GET metrics/gpu answers. */
  metrics: unknown = { gpus: [], reason: 'NVML not found', timestamp: null };
  /** What GET clusters/NAME/metrics answers, per cluster (the workers' per-host series). */
  hostMetrics: Record<string, unknown> = {};
  /** The backend `auto` picks (GET backends). */
  auto: string | null = 'local';
  calls: Call[] = [];

  constructor(readonly baseUrl = '/base/') {}

  /** The requests that changed something (not the polls). */
  get changes(): Call[] {
    return this.calls.filter(c => c.method !== 'GET');
  }

  requester(): IRequester {
    return { baseUrl: this.baseUrl, fetcher: (url, init) => this.fetch(url, init) };
  }

  fetch = async (input: string | Request | URL, init?: RequestInit): Promise<Response> => {
    const request = input instanceof Request ? input : null;
    const url = new URL(request ? request.url : String(input), 'http://localhost');
    const method = (init?.method ?? request?.method ?? 'GET').toUpperCase();
    const text = init?.body !== undefined ? String(init.body) : request ? await request.text() : '';
    const body = text ? JSON.parse(text) : null;
    const path = decodeURIComponent(url.pathname.replace(/^.*?\/aiinfra\/api\//, ''));
    this.calls.push({ method, path, body });
    const [status, data] = this.answer(method, path, body);
    return new Response(JSON.stringify(data), { status, headers: { 'Content-Type': 'application/json' } });
  };

  private answer(method: string, path: string, body: any): [number, unknown] {
    const [head, name, part] = path.split('/');
    const found = this.clusters.find(c => c.name === name);
    if (method === 'GET' && head === 'clusters' && part === 'plots') {
      return found
        ? [200, { name, plots: this.plots, workers: found.workers, gpu_workers: this.gpuWorkers }]
        : [404, { message: `name: no cluster named '${name}'`, field: 'name' }];
    }
    if (method === 'GET' && head === 'clusters' && part === 'metrics') {
      return found
        ? [200, this.hostMetrics[name] ?? { hosts: [], as_of: 1 }]
        : [404, { message: `name: no cluster named '${name}'`, field: 'name' }];
    }
    if (method === 'GET' && path === 'devices') {
      return [200, { available: true, host: 'fakehost', gpus: [], tpus: [], cpu: { usable_cores: 2 }, memory: { total: 2 ** 34 } }];
    }
    if (method === 'GET' && path === 'metrics/gpu') {
      return [200, this.metrics];
    }
    if (method === 'GET' && path === 'pipelines/runs') {
      return [200, { available: true, runs: [], launches: [] }];
    }
    if (method === 'GET' && path === 'backends') {
      return [200, { backends: this.backends, auto: this.auto }];
    }
    if (head === 'clusters' && name === undefined) {
      if (method === 'GET') {
        return [200, { clusters: this.clusters }];
      }
      if (method === 'POST') {
        const made = cluster(body.name ?? `cluster-${this.clusters.length}`, {
          backend: body.backend ?? 'local',
          workers: body.workers ?? 1
        });
        this.clusters.push(made);
        return [201, made];
      }
    }
    if (head === 'clusters' && name !== undefined) {
      if (!found) {
        return [404, { message: `name: no cluster named '${name}'`, field: 'name' }];
      }
      if (method === 'PATCH') {
        if ('workers' in body) {
          Object.assign(found, { workers: body.workers, adapt: null });
        } else {
          Object.assign(found, { adapt: body.adapt });
        }
        return [200, found];
      }
      if (method === 'DELETE') {
        this.clusters = this.clusters.filter(c => c !== found);
        return [200, { stopped: name }];
      }
    }
    return [405, { message: `${method} ${path}: not served by the fake`, field: null }];
  }
}

/** A WebSocket stand-in the tests open, feed and close by hand. */
export class FakeSocket {
  static opened: FakeSocket[] = [];
  onopen: ((event: any) => void) | null = null;
  onmessage: ((event: any) => void) | null = null;
  onclose: ((event: any) => void) | null = null;
  onerror: ((event: any) => void) | null = null;
  closed = false;

  constructor() {
    FakeSocket.opened.push(this);
  }

  static last(): FakeSocket {
    return FakeSocket.opened[FakeSocket.opened.length - 1];
  }

  open(): void {
    this.onopen?.({});
  }

  push(message: unknown): void {
    this.onmessage?.({ data: typeof message === 'string' ? message : JSON.stringify(message) });
  }

  /** The server went away (or refused the upgrade). */
  drop(): void {
    this.onerror?.({});
    this.onclose?.({});
  }

  close(): void {
    this.closed = true;
  }
}
