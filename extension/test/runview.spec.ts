import { ReactWidget } from '@jupyterlab/apputils';
import { CommandRegistry } from '@lumino/commands';
import { Widget } from '@lumino/widgets';
import * as React from 'react';

import { OTHER_FILE, parseParamLines, PromoteForm, RunPipelineForm } from '../src/pipelines/dialogs';
import { RunsModel } from '../src/pipelines/runs';
import { PipelineSection, startLabel } from '../src/pipelines/sidebar';
import { RunsView } from '../src/pipelines/runview';
import { formToRunBody } from '../src/pipelines/spec';
import { $, check, type, waitFor } from './dom';
import { FakeRuns, record, SPEC } from './fakeruns';

async function mount<T extends Widget>(widget: T, ready: string): Promise<T> {
  Widget.attach(widget, document.body);
  await waitFor(() => widget.node.querySelector(ready), ready);
  return widget;
}

describe('the run dialog', () => {
  it('shows the spec params per step, the clusters, only and force; its value is the POST body', async () => {
    const form = await mount(new RunPipelineForm({ spec: SPEC, clusters: ['gpus', 'cpu'] }), '.aiinfra-param');
    const params = Array.from(form.node.querySelectorAll<HTMLElement>('.aiinfra-param')).map(
      e => `${e.dataset.step}.${e.dataset.param}:${e.dataset.kind}`
    );
    expect(params).toEqual([
      'prepare.n:param',
      'prepare.tag:param',
      'prepare.scale:param',
      'prepare.fast:param',
      'prepare.sizes:param',
      'train.lr:grid'
    ]);
    expect(($('input[name="prepare.n"]', form.node) as HTMLInputElement).value).toBe('1000');
    const clusters = Array.from(form.node.querySelectorAll<HTMLOptionElement>('select[name="cluster"] option')).map(o => o.value);
    expect(clusters).toEqual(['', 'gpus', 'cpu']);

    type($('input[name="prepare.n"]', form.node)!, '7');
    await waitFor(() => form.getValue().values['prepare.n'] === '7', 'the typed value');
    type($('input[name="train.lr"]', form.node)!, '[0.5]');
    check($('input[name="prepare.fast"]', form.node)!, true);
    type($('select[name="cluster"]', form.node)!, 'gpus');
    type($('select[name="only"]', form.node)!, 'train[lr=0.1]');
    check($('input[name="force"]', form.node)!, true);
    await waitFor(() => form.getValue().force, 'force');
    expect(formToRunBody(SPEC, form.getValue()).body).toEqual({
      pipeline: 'demo/pipeline.yaml',
      params: { 'prepare.n': 7, 'prepare.fast': true, 'train.lr': 0.5 },
      cluster: 'gpus',
      only: ['train[lr=0.1]'],
      force: true
    });
    form.dispose();
  });

  it('names the pipeline, offers the others and another file, and Schedule… where it exists', async () => {
    const other = { ...SPEC, path: 'other/pipeline.yaml', name: 'other', steps: [SPEC.steps[1]], nodes: [] };
    const picked: string[] = [];
    const scheduled: string[] = [];
    const form = await mount(
      new RunPipelineForm({
        spec: SPEC,
        clusters: [],
        pipelines: ['other/pipeline.yaml', 'demo/pipeline.yaml'],
        loadSpec: async path => (path === other.path ? other : SPEC),
        pickFile: () => picked.push('file dialog'),
        schedule: path => scheduled.push(path)
      }),
      'select[name="pipeline"]'
    );
    const choices = Array.from(form.node.querySelectorAll<HTMLOptionElement>('select[name="pipeline"] option')).map(o => o.value);
    expect(choices).toEqual(['other/pipeline.yaml', 'demo/pipeline.yaml', OTHER_FILE]);
    expect(($('select[name="pipeline"]', form.node) as HTMLSelectElement).value).toBe('demo/pipeline.yaml');
    // Force's help sits beside its box, not in a column of its own.
    expect($('[data-option="force"] .aiinfra-check-box .aiinfra-check-help', form.node)!.textContent).toContain('ignoring the cache');
    type($('input[name="prepare.n"]', form.node)!, '7');
    type($('select[name="pipeline"]', form.node)!, 'other/pipeline.yaml');
    await waitFor(() => form.spec.path === 'other/pipeline.yaml', 'the other spec');
    await waitFor(() => !$('input[name="prepare.n"]', form.node) && $('input[name="train.lr"]', form.node), 'its form');
    expect(form.getValue().values).toEqual({}); // the other pipeline's params, untouched
    type($('select[name="pipeline"]', form.node)!, OTHER_FILE);
    ($('button.aiinfra-pick-file', form.node) as HTMLButtonElement).click(); // the same, as a button
    expect(picked).toEqual(['file dialog', 'file dialog']);
    ($('button.aiinfra-schedule-pipeline', form.node) as HTMLButtonElement).click();
    expect(scheduled).toEqual(['other/pipeline.yaml']);
    form.dispose();

    const plain = await mount(new RunPipelineForm({ spec: SPEC, clusters: [] }), 'select[name="pipeline"]');
    expect($('button.aiinfra-schedule-pipeline', plain.node)).toBeNull(); // no Schedules panel: no button
    expect(plain.node.querySelectorAll('select[name="pipeline"] option')).toHaveLength(1);
    plain.dispose();
  });
});

describe('the Add to pipeline dialog', () => {
  it('offers the pipeline steps for after and reads params lines', async () => {
    const form = await mount(new PromoteForm({ pipeline: 'demo/pipeline.yaml', name: 'report' }), 'input[name="name"]');
    expect(form.node.textContent).toContain('no other steps yet');
    form.setSteps(['prepare', 'train', 'report']);
    await waitFor(() => $('input[name="after.train"]', form.node), 'after choices');
    expect($('input[name="after.report"]', form.node)).toBeNull(); // not after itself
    check($('input[name="after.train"]', form.node)!, true);
    type($('textarea[name="params"]', form.node)!, 'lr=0.1\ntag=010\nname=x y');
    await waitFor(() => form.getValue().after.length === 1, 'after');
    const value = form.getValue();
    expect(value).toEqual({ pipeline: 'demo/pipeline.yaml', name: 'report', after: ['train'], params: 'lr=0.1\ntag=010\nname=x y' });
    expect(parseParamLines(value.params).params).toEqual({ lr: 0.1, tag: '010', name: 'x y' }); // '010' is not JSON: a string
    expect(parseParamLines('tag="010"').params).toEqual({ tag: '010' });
    expect(parseParamLines('bad key=1').error).toContain('KEY a Python identifier');
    form.dispose();
  });
});

describe('the run view', () => {
  function setup(fake: FakeRuns) {
    const commands = new CommandRegistry();
    const executed: Array<[string, any]> = [];
    const ids = {
      openExecuted: 'test:open',
      cancelRun: 'test:cancel',
      rerunFailed: 'test:rerun',
      resumeRun: 'test:resume',
      runFrom: 'test:from'
    };
    for (const id of Object.values(ids)) {
      commands.addCommand(id, { execute: args => void executed.push([id, args]) });
    }
    const model = new RunsModel({ requester: fake.requester(), interval: 60000 });
    const view = new RunsView({ model, commands, commandIDs: ids });
    return { model, view, executed };
  }

  it('shows runs grouped with cached runs folded, the DAG with live states and the failing cell', async () => {
    const fake = new FakeRuns();
    fake.runs = [
      record('r1', 10, { prepare: { status: 'ok', duration: 2 }, train: { status: 'ok', upstream: ['prepare'] } }),
      record('r2', 20, { prepare: { status: 'cached' }, train: { status: 'cached', upstream: ['prepare'] } }),
      record('r3', 30, {
        prepare: {
          status: 'ok',
          duration: 1.25,
          attempts: 2,
          worker: 'tcp://127.0.0.1:1',
          worker_name: '0',
          host: 'gpu-node-3',
          devices: ['cuda:0'],
          notebook_path: 'demo/runs/r3/prepare.ipynb',
          cost: { gpu_hours: 0.000347222, core_hours: 0.000347222, worker_hours: 0.000347222 }
        },
        train: { status: 'failed', upstream: ['prepare'], error: 'cell In [2] (1/0): ZeroDivisionError: division by zero', notebook_path: 'demo/runs/r3/train.ipynb' }
      })
    ];
    const { model, view, executed } = setup(fake);
    model.select('r3');
    await mount(view, '.aiinfra-run-detail[data-run-id="r3"]');
    await model.refresh();
    const rows = Array.from(view.node.querySelectorAll<HTMLElement>('.aiinfra-runs-row')).map(
      r => `${r.dataset.runId}${r.classList.contains('aiinfra-runs-cached') ? ' cached' : ''}`
    );
    expect(rows).toEqual(['r3', 'r2 cached', 'r1']);
    const nodes = Array.from(view.node.querySelectorAll<SVGGElement>('.aiinfra-dag-node')).map(
      n => `${n.dataset.node}=${n.dataset.status}`
    );
    expect(nodes).toEqual(['prepare=ok', 'train=failed']);
    const prepare = $('.aiinfra-step-row[data-step="prepare"]', view.node)!;
    expect($('.aiinfra-step-duration', prepare)!.textContent).toBe('1.3 s');
    expect($('.aiinfra-step-attempts', prepare)!.textContent).toBe('2');
    expect($('.aiinfra-step-where', prepare)!.textContent).toBe('gpu-node-3 · worker 0 · cuda:0');
    expect($('.aiinfra-step-where', prepare)!.title).toBe('tcp://127.0.0.1:1');
    expect($('.aiinfra-step-cost', prepare)!.textContent).toBe('1.2 GPU-s · 1.2 core-s');
    expect($('.aiinfra-step-cost', prepare)!.title).toContain('0.0003472 GPU-h');
    expect($('.aiinfra-step-row[data-step="train"] .aiinfra-step-cost', view.node)!.textContent).toBe('');
    expect($('.aiinfra-step-failure[data-step="train"]', view.node)!.textContent).toContain('ZeroDivisionError: division by zero');

    // Edges end in arrows; every box has Run from here.
    const edge = $('.aiinfra-dag-edge', view.node)!;
    expect(edge.getAttribute('marker-end')).toMatch(/^url\(#aiinfra-dag-arrow-\d+\)$/);
    expect(view.node.querySelector(edge.getAttribute('marker-end')!.slice(4, -1))).not.toBeNull();

    ($('.aiinfra-open-executed', prepare) as HTMLButtonElement).click();
    ($('.aiinfra-rerun-failed', view.node) as HTMLButtonElement).click();
    ($('.aiinfra-resume-run', view.node) as HTMLButtonElement).click();
    $('.aiinfra-dag-node[data-node="train"] .aiinfra-dag-from', view.node)!.dispatchEvent(new MouseEvent('click', { bubbles: true }));
    expect(executed).toEqual([
      ['test:open', { path: 'demo/runs/r3/prepare.ipynb', run_id: 'r3', source: '' }],
      ['test:rerun', { run_id: 'r3' }],
      ['test:resume', { run_id: 'r3' }],
      ['test:from', { run_id: 'r3', step: 'train' }]
    ]);

    // A fully cached run says so instead of looking like work.
    ($('.aiinfra-runs-row[data-run-id="r2"]', view.node) as HTMLElement).click();
    await waitFor(() => $('.aiinfra-run-detail[data-run-id="r2"]', view.node), 'r2');
    expect($('.aiinfra-run-head .aiinfra-status', view.node)!.textContent).toBe('cached');
    view.dispose();
  });

  it('marks scheduled runs, resumes only the latest, and links a failed launch to its log', async () => {
    const fake = new FakeRuns();
    fake.runs = [
      record('r1', 10, { a: { status: 'failed' } }, { status: 'failed', trigger: { kind: 'schedule', schedule: 'nightly' } }),
      record('r2', 20, { a: { status: 'failed' } }, { status: 'interrupted', trigger: { kind: 'lab' } })
    ];
    fake.launches = [{ launch: 'launch-7', pipeline: '/srv/root/demo/pipeline.yaml', status: 'failed', exit_code: 2, run_id: null, log: '/private/launch-7.log' }];
    fake.logs['launch-7'] = 'aiinfra: cluster: no cluster named nosuch';
    const { model, view } = setup(fake);
    model.select('r1');
    await mount(view, '.aiinfra-runs');
    await model.refresh();
    await waitFor(() => $('.aiinfra-run-detail[data-run-id="r1"]', view.node), 'r1');
    expect($('.aiinfra-runs-row[data-run-id="r1"] .aiinfra-scheduled', view.node)!.dataset.schedule).toBe('nightly');
    expect($('.aiinfra-runs-row[data-run-id="r2"] .aiinfra-scheduled', view.node)).toBeNull();
    expect($('.aiinfra-run-head .aiinfra-scheduled', view.node)!.textContent).toBe('scheduled: nightly');
    expect($('.aiinfra-resume-run', view.node)).toBeNull(); // not the latest run of its pipeline
    model.select('r2');
    await waitFor(() => $('.aiinfra-resume-run', view.node), 'Resume on the interrupted latest run');

    model.select('launch-7');
    await waitFor(() => $('.aiinfra-launch-log-open', view.node), 'the log link');
    expect(view.node.textContent).not.toContain('/private/launch-7.log'); // no server path
    ($('.aiinfra-launch-log-open', view.node) as HTMLButtonElement).click();
    const log = await waitFor(() => $('.aiinfra-launch-log', view.node), 'the log');
    expect(log.textContent).toContain('no cluster named nosuch');

    // A run that stopped before its steps says why, with its launch's log a click away.
    fake.runs.push(
      record('r0', 5, { a: { status: 'skipped' } }, { status: 'failed', error: "NotFoundError: name: no cluster named 'gpu'" })
    );
    fake.launches.push({ launch: 'launch-9', pipeline: '/srv/root/demo/pipeline.yaml', status: 'failed', exit_code: 2, run_id: 'r0' });
    fake.logs['launch-9'] = 'error: name: no cluster named gpu';
    await model.refresh();
    model.select('r0');
    const stopped = await waitFor(() => $('.aiinfra-run-error', view.node), 'the run error');
    expect(stopped.textContent).toContain("no cluster named 'gpu'");
    ($('.aiinfra-launch-log-open', stopped) as HTMLButtonElement).click();
    await waitFor(() => $('.aiinfra-run-error .aiinfra-launch-log', view.node), 'its log');
    view.dispose();
  });

  it('offers cancel for a running run this server launched, and follows its states live', async () => {
    const fake = new FakeRuns();
    fake.launches = [{ launch: 'launch-0', pipeline: '/srv/root/demo/pipeline.yaml', status: 'running', exit_code: null, run_id: 'r5' }];
    fake.runs = [record('r5', 50, { prepare: { status: 'running', start: Date.now() / 1000 - 3 }, train: { status: 'pending', upstream: ['prepare'] } })];
    const { model, view, executed } = setup(fake);
    model.select('launch-0');
    await mount(view, '.aiinfra-runs');
    await model.refresh();
    await waitFor(() => $('.aiinfra-run-detail[data-run-id="r5"]', view.node), 'the run, from its launch');
    const cancel = $('.aiinfra-cancel-run', view.node) as HTMLButtonElement;
    expect(cancel.disabled).toBe(false);
    expect($('.aiinfra-step-row[data-step="prepare"] .aiinfra-step-duration', view.node)!.textContent).toMatch(/^\d+\.\d s$/);
    cancel.click();
    expect(executed).toEqual([['test:cancel', { run_id: 'r5' }]]);

    fake.runs = [record('r5', 50, { prepare: { status: 'ok', duration: 4 }, train: { status: 'running', upstream: ['prepare'] } })];
    await model.refresh();
    await waitFor(() => $('.aiinfra-dag-node[data-node="prepare"][data-status="ok"]', view.node), 'prepare ok');
    expect($('.aiinfra-dag-node[data-node="train"]', view.node)!.dataset.status).toBe('running');
    view.dispose();
  });
});

describe("the sidebar's pipeline section", () => {
  it('lists runs by their start time, tags scheduled ones and links a failed launch to its log', async () => {
    const commands = new CommandRegistry();
    const executed: Array<[string, any]> = [];
    for (const id of ['test:run', 'aiinfra:open-runs', 'aiinfra:open-executed']) {
      commands.addCommand(id, { execute: args => void executed.push([id, args]) });
    }
    const day = new Date(2026, 11, 6, 11, 42).getTime() / 1000;
    const model = {
      runs: {
        data: {
          available: true,
          runs: [
            record('20261206-100000-1', day - 3600, { a: { status: 'ok' } }),
            record('20261206-114200-2', day, { a: { status: 'failed', notebook_path: 'demo/runs/20261206-114200-2/a.ipynb' } }, {
              trigger: { kind: 'schedule', schedule: 'nightly' }
            })
          ],
          launches: [{ launch: 'launch-3', pipeline: '/srv/root/demo/pipeline.yaml', status: 'failed', exit_code: 2, log: '/private/l.log' }]
        }
      }
    } as any;
    const widget = ReactWidget.create(React.createElement(PipelineSection, { model, commands, ids: { runPipeline: 'test:run' } }));
    await mount(widget, '.aiinfra-runinfo');
    const rows = Array.from(widget.node.querySelectorAll<HTMLElement>('.aiinfra-runinfo')).map(r => r.dataset.runId);
    expect(rows).toEqual(['20261206-114200-2', '20261206-100000-1']); // latest start first
    const first = $('.aiinfra-runinfo summary', widget.node)!;
    expect($('.aiinfra-run-when', first)!.textContent).toBe(startLabel(day));
    expect(first.textContent).not.toContain('20261206-114'); // no cut-off ids
    expect($('.aiinfra-scheduled', first)!.dataset.schedule).toBe('nightly');
    expect(widget.node.textContent).not.toContain('/private/l.log');
    ($('.aiinfra-launch-log-link', widget.node) as HTMLButtonElement).click();
    ($('.aiinfra-step .aiinfra-link', widget.node) as HTMLButtonElement).click();
    expect(executed).toEqual([
      ['aiinfra:open-runs', { run_id: 'launch-3' }],
      ['aiinfra:open-executed', { path: 'demo/runs/20261206-114200-2/a.ipynb', run_id: '20261206-114200-2' }]
    ]);
    expect(startLabel(day, new Date(2026, 11, 6, 18, 0))).toMatch(/11.42/);
    expect(startLabel(day, new Date(2026, 11, 9))).toMatch(/6/);
    widget.dispose();
  });
});
