import { editsOrRuns } from '../src/pipelines/readonly';
import {
  canResume,
  cellFailure,
  costTitle,
  dagLayout,
  executedRun,
  failedSteps,
  formatAmount,
  formatCost,
  formatHours,
  fromBody,
  groupRuns,
  isFullyCached,
  pipelinePath,
  placement,
  rerunBody,
  resumeBody,
  RunsModel,
  scheduleOf,
  sourcePath,
  stepDuration,
  workerLabel
} from '../src/pipelines/runs';
import { fetchSpec, formToRunBody, onlyChoices, paramFields, parseField } from '../src/pipelines/spec';
import { waitFor } from './dom';
import { FakeRuns, record, SPEC } from './fakeruns';

describe('the run form made from the spec', () => {
  it('has one field per param and grid axis, typed like the spec', () => {
    const fields = paramFields(SPEC);
    expect(fields.map(f => [f.key, f.type, f.kind])).toEqual([
      ['prepare.n', 'integer', 'param'],
      ['prepare.tag', 'string', 'param'],
      ['prepare.scale', 'number', 'param'],
      ['prepare.fast', 'boolean', 'param'],
      ['prepare.sizes', 'json', 'param'],
      ['train.lr', 'json', 'grid']
    ]);
    expect(fields.find(f => f.key === 'train.lr')!.initial).toBe('[0.1,0.01]');
  });

  it('reads inputs back as the spec types them, with one-line errors', () => {
    const [n, tag, scale, , sizes, lr] = paramFields(SPEC);
    expect(parseField(n, '12')).toEqual({ value: 12 });
    expect(parseField(n, '1.5').error).toBe('prepare.n: got "1.5"; allowed: an integer');
    expect(parseField(tag, '010')).toEqual({ value: '010' }); // a string stays a string
    expect(parseField(scale, 'x').error).toContain('allowed: a number');
    expect(parseField(sizes, '[3, 4]')).toEqual({ value: [3, 4] });
    expect(parseField(sizes, '[3,').error).toContain('allowed: JSON');
    expect(parseField(lr, '0.1')).toEqual({ value: 0.1 });
    expect(parseField(lr, '[0.5]')).toEqual({ value: 0.5 });
    expect(parseField(lr, '[0.5, 1]').error).toContain('one value');
  });

  it('sends only what changed, typed, with cluster, only and force', () => {
    const untouched = formToRunBody(SPEC, { values: {}, cluster: '', only: '', force: false });
    expect(untouched.body).toEqual({ pipeline: 'demo/pipeline.yaml' });
    const same = formToRunBody(SPEC, { values: { 'prepare.n': '1000', 'train.lr': '[0.1, 0.01]' }, cluster: '', only: '', force: false });
    expect(same.body).toEqual({ pipeline: 'demo/pipeline.yaml' });
    const changed = formToRunBody(SPEC, {
      values: { 'prepare.n': '5', 'prepare.fast': true, 'prepare.tag': 'None', 'train.lr': '0.5' },
      cluster: 'gpus',
      only: 'train',
      force: true
    });
    expect(changed.body).toEqual({
      pipeline: 'demo/pipeline.yaml',
      params: { 'prepare.n': 5, 'prepare.fast': true, 'prepare.tag': 'None', 'train.lr': 0.5 },
      cluster: 'gpus',
      only: ['train'],
      force: true
    });
    expect(formToRunBody(SPEC, { values: { 'prepare.n': 'x' }, cluster: '', only: '', force: false }).error).toContain(
      'prepare.n'
    );
  });

  it('offers steps and expanded nodes for only', () => {
    expect(onlyChoices(SPEC)).toEqual(['prepare', 'train', 'train[lr=0.1]', 'train[lr=0.01]']);
  });

  it('asks for the spec with the path as one query value', async () => {
    const fake = new FakeRuns();
    await expect(fetchSpec(fake.requester(), 'demo/pipeline.yaml')).resolves.toEqual(SPEC);
    expect(fake.calls[0].url).toBe('/base/aiinfra/api/pipelines/spec?path=demo%2Fpipeline.yaml');
    await expect(fetchSpec(fake.requester(), 'a b&c.yaml')).rejects.toThrow("path: no file 'a b&c.yaml'");
  });
});

describe('step cost cells', () => {
  it('write hours as the CLI does: 4 significant digits, plain decimals', () => {
    expect(formatHours(0)).toBe('0');
    expect(formatHours(0.000005556)).toBe('0.000005556');
    expect(formatHours(1 / 3)).toBe('0.3333');
    expect(formatHours(12.5)).toBe('12.5');
    expect(formatHours(1234.56)).toBe('1235');
    expect(formatHours(undefined)).toBe('');
  });

  it('write an amount in the unit a person reads, with two significant digits', () => {
    expect(formatAmount(0.0005052, 'core')).toBe('1.8 core-s');
    expect(formatAmount(0.000145004, 'core')).toBe('0.52 core-s');
    expect(formatAmount(0.0000001, 'core')).toBe('0.00036 core-s');
    expect(formatAmount(0.05, 'core')).toBe('3 core-min');
    expect(formatAmount(0.9, 'GPU')).toBe('54 GPU-min');
    expect(formatAmount(1.234, 'GPU')).toBe('1.2 GPU-h');
    expect(formatAmount(1234.5, 'core')).toBe('1200 core-h');
    expect(formatAmount(0, 'core')).toBe('0 core-s');
  });

  it('say cached, not measured, or the core time held and GPU time where there were GPUs', () => {
    expect(formatCost({ cached: true, gpu_hours: 0, core_hours: 0 })).toBe('cached');
    expect(formatCost({ error: 'KeyError: x' })).toBe('not measured');
    expect(formatCost({ gpu_hours: 0.5, core_hours: 2 })).toBe('30 GPU-min · 2 core-h');
    expect(formatCost({ gpu_hours: 0, core_hours: 0.0005052 })).toBe('1.8 core-s');
    expect(formatCost(null)).toBe('');
    // The exact hours stay one hover away.
    expect(costTitle({ gpu_hours: 0, core_hours: 0.0005052, worker_hours: 0.0005052, cpu_hours: 0.00001 })).toBe(
      '0 GPU-h, 0.0005052 core-h, 0.0005052 worker-h, 0 GB-h of memory held; 0.00001 CPU-h used'
    );
  });
});

describe('where a step ran', () => {
  it('names the host and the worker, not its address', () => {
    expect(workerLabel({ worker: 'inproc://192.0.2.2/7605/4', host: 'vm' })).toBe('vm · in-process worker 4');
    expect(workerLabel({ worker: 'inproc://192.0.2.2/7605/4', worker_name: '0', host: 'vm' })).toBe('vm · worker 0');
    expect(workerLabel({ worker: 'tcp://10.0.0.5:40123', worker_name: 'SLURMCluster-3', host: 'gpu-1', slurm_node: 'node7' })).toBe(
      'node7 · SLURMCluster-3'
    );
    expect(workerLabel({ worker: 'tcp://10.0.0.5:40123', worker_name: 'tcp://10.0.0.5:40123', host: 'gpu-1' })).toBe('gpu-1 · port 40123');
    expect(workerLabel({ worker: 'tcp://10.0.0.5:40123' })).toBe('10.0.0.5:40123');
    expect(workerLabel({})).toBe('');
    expect(placement({ worker: 'inproc://h/1/2', host: 'vm', devices: ['cuda:0', 'cuda:1'] })).toBe('vm · in-process worker 2 · cuda:0,cuda:1');
  });
});

describe('resume, run from a step, schedules and executed notebooks', () => {
  const failed = record('r2', 20, { prepare: { status: 'ok', step: 'prepare' }, 'train[lr=0.1]': { status: 'failed', step: 'train' } });

  it('resumes the latest failed or interrupted run of a pipeline with its params and cluster', () => {
    const older = record('r1', 10, { prepare: { status: 'failed' } });
    const elsewhere = record('o1', 30, { a: { status: 'ok' } }, { folder: 'other/runs/o1', file: '/srv/root/other/pipeline.yaml' });
    const runs = [older, failed, elsewhere];
    expect(canResume(failed, runs)).toBe(true);
    expect(canResume(older, runs)).toBe(false); // --resume continues the last run
    expect(canResume({ ...failed, status: 'interrupted' }, runs)).toBe(true);
    expect(canResume({ ...failed, status: 'ok' }, runs)).toBe(false);
    expect(canResume({ ...failed, error: "NotFoundError: no cluster named 'x'", cluster: null }, runs)).toBe(false);
    const withParams = { ...failed, overrides: [{ step: 'prepare', key: 'n', value: 5 }], cluster: { name: 'gpus', embedded: false } };
    expect(resumeBody(withParams).body).toEqual({ pipeline: 'demo/pipeline.yaml', resume: true, params: { 'prepare.n': 5 }, cluster: 'gpus' });
  });

  it('runs from a step or an expanded node', () => {
    expect(fromBody(failed, 'prepare').body).toEqual({ pipeline: 'demo/pipeline.yaml', from: 'prepare' });
    expect(fromBody(failed, 'train[lr=0.1]').body).toEqual({ pipeline: 'demo/pipeline.yaml', from: 'train[lr=0.1]' });
    expect(fromBody(failed, 'nope').error).toContain('no step nope');
    expect(fromBody({ ...failed, folder: null }, 'prepare').error).toContain('outside the Jupyter root');
  });

  it('knows runs a schedule started', () => {
    expect(scheduleOf({ ...failed, trigger: { kind: 'schedule', schedule: 'nightly' } })).toBe('nightly');
    expect(scheduleOf({ ...failed, trigger: { kind: 'lab' } })).toBeNull();
    expect(scheduleOf(failed)).toBeNull();
  });

  it('knows an executed notebook by its folder, and its source', () => {
    expect(executedRun('demo/runs/20261206-114250-121997-e78b/total.ipynb')).toEqual({
      runId: '20261206-114250-121997-e78b',
      folder: 'demo/runs/20261206-114250-121997-e78b',
      name: 'total.ipynb'
    });
    expect(executedRun('runs/20261206-114250-1/x.ipynb')?.runId).toBe('20261206-114250-1');
    expect(executedRun('demo/runs/notes/total.ipynb')).toBeNull();
    expect(executedRun('demo/total.ipynb')).toBeNull();
    expect(sourcePath(failed, { source: 'train.ipynb' })).toBe('demo/train.ipynb');
  });

  it('stops the command-mode keys that edit or run a read-only notebook, not the others', () => {
    const key = (k: string, mods: KeyboardEventInit = {}) => editsOrRuns(new KeyboardEvent('keydown', { key: k, ...mods }));
    for (const k of ['x', 'v', 'V', 'd', 'a', 'b', 'z', 'm', 'y', '1']) {
      expect([k, key(k)]).toEqual([k, true]);
    }
    expect(key('Enter', { shiftKey: true })).toBe(true);
    expect(key('Enter', { ctrlKey: true })).toBe(true);
    expect(key('-', { ctrlKey: true, shiftKey: true })).toBe(true);
    for (const k of ['ArrowDown', 'j', 'k', 'c', 'Escape', 'Enter', 'f']) {
      expect([k, key(k)]).toEqual([k, false]);
    }
    expect(key('c', { ctrlKey: true })).toBe(false); // copying is fine
  });
});

describe('runs in the run view', () => {
  const ok = { status: 'ok', duration: 1.5 };
  const cached = { status: 'cached', duration: 0 };

  it('groups runs by pipeline, latest first, and folds fully cached runs', () => {
    const other = record('o1', 50, { a: ok }, { folder: 'other/runs/o1', file: '/srv/root/other/pipeline.yaml', pipeline: 'other' });
    const runs = [
      record('r1', 10, { prepare: ok, train: ok }),
      record('r2', 20, { prepare: cached, train: cached }),
      record('r3', 30, { prepare: cached, train: cached }),
      record('r4', 40, { prepare: cached, train: { status: 'failed', error: 'boom' } }),
      other
    ];
    expect(isFullyCached(runs[1])).toBe(true);
    expect(isFullyCached(runs[3])).toBe(false);
    const groups = groupRuns(runs);
    expect(groups.map(g => g.pipeline)).toEqual(['other/pipeline.yaml', 'demo/pipeline.yaml']);
    const rows = groups[1].rows;
    expect(rows.map(r => (r.kind === 'run' ? r.run.run_id : `cached:${r.runs.map(x => x.run_id).join(',')}`))).toEqual([
      'r4',
      'cached:r3,r2',
      'r1'
    ]);
  });

  it('knows the pipeline file of a run below the root', () => {
    expect(pipelinePath(record('r1', 0, {}))).toBe('demo/pipeline.yaml');
    expect(pipelinePath(record('r1', 0, {}, { folder: 'runs/r1', file: '/x/p.yaml' }))).toBe('p.yaml');
    expect(pipelinePath(record('r1', 0, {}, { folder: null }))).toBe('');
  });

  it('re-runs failed steps only, with the same params and cluster', () => {
    const run = record(
      'r4',
      40,
      { prepare: ok, 'train[lr=0.1]': { status: 'failed' }, 'train[lr=0.01]': ok, evaluate: { status: 'skipped' } },
      { overrides: [{ step: 'prepare', key: 'n', value: 5 }, { step: null, key: 'lr', value: '010' }], cluster: { name: 'gpus', embedded: false } }
    );
    expect(failedSteps(run)).toEqual(['train[lr=0.1]']);
    expect(rerunBody(run).body).toEqual({
      pipeline: 'demo/pipeline.yaml',
      only: ['train[lr=0.1]'],
      params: { 'prepare.n': 5, lr: '010' },
      cluster: 'gpus'
    });
    expect(rerunBody(record('r1', 0, { a: ok })).error).toContain('no failed step');
  });

  it('lays the DAG out by depth and times running steps', () => {
    const run = record('r', 0, {
      prepare: { status: 'ok', upstream: [] },
      'train[lr=0.1]': { status: 'running', upstream: ['prepare'], start: 100 },
      'train[lr=0.01]': { status: 'pending', upstream: ['prepare'] },
      evaluate: { status: 'pending', upstream: ['train[lr=0.1]', 'train[lr=0.01]'] }
    });
    const layout = dagLayout(run);
    const x = Object.fromEntries(layout.nodes.map(n => [n.name, n.x]));
    expect(x.prepare).toBeLessThan(x['train[lr=0.1]']);
    expect(x['train[lr=0.1]']).toBe(x['train[lr=0.01]']);
    expect(x['train[lr=0.01]']).toBeLessThan(x.evaluate);
    expect(layout.edges).toHaveLength(4);
    expect(stepDuration(run.steps!['train[lr=0.1]'], 112)).toBe(12);
    expect(stepDuration({ status: 'ok', duration: 3 }, 112)).toBe(3);
    expect(stepDuration({ status: 'pending' }, 112)).toBeNull();
  });

  it('finds the failing cell in an executed notebook', () => {
    const nb = {
      cells: [
        { cell_type: 'code', source: 'x = 1', outputs: [] },
        {
          cell_type: 'code',
          source: ['1 / ', '0'],
          outputs: [{ output_type: 'error', ename: 'ZeroDivisionError', evalue: 'division by zero', traceback: ['\u001b[31mZeroDivisionError\u001b[0m: division by zero'] }]
        }
      ]
    };
    expect(cellFailure(nb, 1)).toEqual({
      index: 1,
      source: '1 / 0',
      ename: 'ZeroDivisionError',
      evalue: 'division by zero',
      traceback: 'ZeroDivisionError: division by zero'
    });
    expect(cellFailure({ cells: [] })).toBeNull();
  });
});

describe('RunsModel', () => {
  it('follows a launch to its run, cancels with DELETE and re-runs failed steps with POST', async () => {
    const fake = new FakeRuns();
    const model = new RunsModel({ requester: fake.requester(), interval: 60000 });
    const launch = await model.start({ pipeline: 'demo/pipeline.yaml' });
    expect(model.selected).toBe(launch.launch);
    expect(model.launch?.launch).toBe(launch.launch);
    expect(model.run).toBeNull();
    // The run writes its record; the server learns its id.
    fake.launches[0].run_id = 'r9';
    fake.runs = [record('r9', 90, { prepare: { status: 'running', start: 90 } })];
    await model.refresh();
    expect(model.selected).toBe('r9');
    expect(model.run?.run_id).toBe('r9');
    expect(model.cancellable(model.run!)).toBe(true);
    await model.cancel('r9');
    expect(fake.calls.filter(c => c.method === 'DELETE').map(c => c.url)).toEqual(['/base/aiinfra/api/pipelines/runs/r9']);

    fake.runs = [record('r9', 90, { prepare: { status: 'ok' }, train: { status: 'failed' } })];
    fake.launches[0].status = 'failed';
    await model.refresh();
    expect(model.cancellable(model.run!)).toBe(false);
    const r9 = model.run!;
    await model.rerunFailed(r9);
    await model.resume(r9);
    await model.runFrom(r9, 'train');
    const posts = fake.calls.filter(c => c.method === 'POST').map(c => c.body);
    expect(posts.slice(1)).toEqual([
      { pipeline: 'demo/pipeline.yaml', only: ['train'] },
      { pipeline: 'demo/pipeline.yaml', resume: true },
      { pipeline: 'demo/pipeline.yaml', from: 'train' }
    ]);
    // A failed launch's log, read through the REST route (never a server path).
    fake.logs['launch-0'] = 'Traceback: no cluster nosuch';
    expect((await model.launchLog('launch-0')).text).toBe('Traceback: no cluster nosuch');
    expect(fake.calls[fake.calls.length - 1].url).toBe('/base/aiinfra/api/pipelines/launches/launch-0/log');
    model.dispose();
  });

  it('reads the failing cell of a failed step once', async () => {
    const fake = new FakeRuns();
    const reads: string[] = [];
    const model = new RunsModel({
      requester: fake.requester(),
      interval: 60000,
      readNotebook: async path => {
        reads.push(path);
        return { cells: [{ source: 'boom()', outputs: [{ output_type: 'error', ename: 'NameError', evalue: 'boom', traceback: [] }] }] };
      }
    });
    fake.runs = [record('r1', 1, { a: { status: 'failed', notebook_path: 'demo/runs/r1/a.ipynb', cell: 0 } })];
    model.select('r1');
    await model.refresh();
    await waitFor(() => model.failures.get('demo/runs/r1/a.ipynb'), 'the failure');
    await model.refresh();
    expect(reads).toEqual(['demo/runs/r1/a.ipynb']);
    expect(model.failures.get('demo/runs/r1/a.ipynb')!.ename).toBe('NameError');
    model.dispose();
  });
});
