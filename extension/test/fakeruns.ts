/** In-memory stand-ins for the pipeline routes the run dialog and run view use. */

import { IRequester } from '../src/api';
import { IRunRecord } from '../src/pipelines/runs';
import { ISpec } from '../src/pipelines/spec';

export const SPEC: ISpec = {
  path: 'demo/pipeline.yaml',
  name: 'demo',
  folder: 'demo',
  steps: [
    {
      name: 'prepare',
      notebook: 'prepare.ipynb',
      notebook_path: 'demo/prepare.ipynb',
      after: [],
      params: { n: 1000, tag: 'a', scale: 0.5, fast: false, sizes: [1, 2] },
      grid: {},
      products: [],
      kernel: 'python3',
      timeout: 600,
      retries: 1
    },
    {
      name: 'train',
      notebook: 'train.ipynb',
      notebook_path: 'demo/train.ipynb',
      after: ['prepare'],
      params: {},
      grid: { lr: [0.1, 0.01] },
      products: [],
      kernel: 'python3',
      timeout: 600,
      retries: 1
    }
  ],
  nodes: [
    { name: 'prepare', step: 'prepare', upstream: [] },
    { name: 'train[lr=0.1]', step: 'train', upstream: ['prepare'] },
    { name: 'train[lr=0.01]', step: 'train', upstream: ['prepare'] }
  ]
};

export function record(id: string, start: number, steps: Record<string, any>, extra: Partial<IRunRecord> = {}): IRunRecord {
  const statuses = Object.values(steps).map((s: any) => s.status);
  return {
    run_id: id,
    pipeline: 'demo',
    file: '/srv/root/demo/pipeline.yaml',
    folder: `demo/runs/${id}`,
    status: statuses.includes('failed') ? 'failed' : statuses.includes('running') ? 'running' : 'ok',
    start,
    steps,
    ...extra
  };
}

/** Answers the routes the run view uses from in-memory runs; records every request. */
export class FakeRuns {
  runs: IRunRecord[] = [];
  launches: any[] = [];
  logs: Record<string, string> = {};
  calls: Array<{ method: string; url: string; body: any }> = [];

  requester(): IRequester {
    return {
      baseUrl: '/base/',
      fetcher: async (url, init) => {
        const body = init.body ? JSON.parse(String(init.body)) : null;
        const method = init.method ?? 'GET';
        this.calls.push({ method, url, body });
        const path = decodeURIComponent(new URL(url, 'http://x').pathname.replace(/^.*\/aiinfra\/api\//, ''));
        const [status, data] = this.answer(method, path, url, body);
        return new Response(JSON.stringify(data), { status });
      }
    };
  }

  private answer(method: string, path: string, url: string, body: any): [number, unknown] {
    if (method === 'GET' && path === 'pipelines/runs') {
      return [200, { available: true, runs: this.runs, launches: this.launches }];
    }
    if (method === 'GET' && path === 'pipelines/spec') {
      const asked = new URL(url, 'http://x').searchParams.get('path');
      return asked === SPEC.path ? [200, SPEC] : [404, { message: `path: no file '${asked}'`, field: 'path' }];
    }
    if (method === 'POST' && path === 'pipelines/runs') {
      const launch = { launch: `launch-${this.launches.length}`, pipeline: body.pipeline, status: 'running', exit_code: null, run_id: null };
      this.launches.push(launch);
      return [202, launch];
    }
    const log = /^pipelines\/launches\/([^/]+)\/log$/.exec(path);
    if (method === 'GET' && log) {
      const text = this.logs[log[1]];
      return text === undefined
        ? [404, { message: `launch: no run launched by this server as '${log[1]}'`, field: 'launch' }]
        : [200, { launch: log[1], text, truncated: false }];
    }
    if (method === 'DELETE' && path.startsWith('pipelines/runs/')) {
      return [200, { status: 'cancelled' }];
    }
    return [405, { message: `${method} ${path}: not served`, field: null }];
  }
}
