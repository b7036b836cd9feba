import {
  cellFailure,
  dagLayout,
  failedSteps,
  formatCost,
  formatHours,
  groupRuns,
  isFullyCached,
  pipelinePath,
  rerunBody,
  RunsModel,
  stepDuration
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

  it('say cached, not measured, or the GPU- and core-hours held', () => {
    expect(formatCost({ cached: true, gpu_hours: 0, core_hours: 0 })).toBe('cached');
    expect(formatCost({ error: 'KeyError: x' })).toBe('not measured');
    expect(formatCost({ gpu_hours: 0.5, core_hours: 2 })).toBe('0.5 GPU-h · 2 core-h');
    expect(formatCost({ core_hours: 0.25 })).toBe('0 GPU-h · 0.25 core-h');
    expect(formatCost(null)).toBe('');
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
    await model.rerunFailed(model.run!);
    const posts = fake.calls.filter(c => c.method === 'POST').map(c => c.body);
    expect(posts[1]).toEqual({ pipeline: 'demo/pipeline.yaml', only: ['train'] });
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
