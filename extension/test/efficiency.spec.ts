/**
 * Issue 28 in the sidebar: the card shows a cluster's warnings and its efficiency beside
 * what it held; the charts switch between this machine and a cluster, whose hosts open
 * through the one chart command as a dockable panel that the layout restorer reopens.
 */

import { ILayoutRestorer, JupyterFrontEnd } from '@jupyterlab/application';
import { CommandRegistry } from '@lumino/commands';
import { Widget } from '@lumino/widgets';

import { ChartPanel } from '../src/chartview';
import { ClusterChartsPanel } from '../src/clustercharts';
import { ChartCommands } from '../src/commands/charts';
import {
  clusterWarnings,
  efficiencyParts,
  peakMemory,
  runSuggestions,
  stepEfficiency,
  stepEfficiencyTitle
} from '../src/efficiency';
import { CommandIDs } from '../src/index';
import { PanelModel } from '../src/model';
import { AiinfraPanel } from '../src/panel';
import { RunsModel } from '../src/pipelines/runs';
import { RunsView } from '../src/pipelines/runview';
import { $, type, waitFor } from './dom';
import { FakeRuns, record } from './fakeruns';
import { cluster, FakeServer } from './fakeserver';

const GIB = 2 ** 30;
const WASTE = 'wasteful: 1 GPU(s) held under 10% utilisation for 2s (window 2s); stop or scale it down, or start it with --stop-when-wasteful';
const DRIFT = 'numpy 2.1.0 on worker host b, 2.2.0 here';

const measuredCost = {
  worker_hours: 1,
  core_hours: 1.2,
  gpu_hours: 2,
  memory_gb_hours: 8,
  cpu_efficiency: 0.4213,
  gpu_efficiency: 0.07,
  gpu_used_hours: 0.14,
  peak_memory: 3.1 * GIB,
  memory_limit: 16 * GIB
};

describe('efficiency figures', () => {
  it('writes each figure labelled, against what was held', () => {
    expect(efficiencyParts(measuredCost)).toEqual(['CPU 42% of 1.20 core-h', 'GPU 7% of 2.00 GPU-h', 'peak memory 3.1 GiB of 16.0 GiB']);
    // Held GPUs whose use was not measured say so; no GPU held: no GPU figure.
    expect(efficiencyParts({ ...measuredCost, gpu_efficiency: null, memory_limit: null })).toEqual([
      'CPU 42% of 1.20 core-h',
      'GPU not measured, 2.00 GPU-h held',
      'peak memory 3.1 GiB'
    ]);
    expect(efficiencyParts({ ...measuredCost, gpu_hours: 0, peak_memory: 0 })).toEqual(['CPU 42% of 1.20 core-h']);
    // A record from before efficiency was measured: nothing to show.
    expect(efficiencyParts({ worker_hours: 1, core_hours: 1 })).toBeNull();
    expect(efficiencyParts(null)).toBeNull();
  });

  it("writes a step's cells and the run's suggestions", () => {
    expect(stepEfficiency(measuredCost)).toBe('CPU 42% · GPU 7%');
    expect(stepEfficiency({ cpu_efficiency: 0.9, gpu_hours: 0 })).toBe('CPU 90%');
    expect(stepEfficiency({ cached: true })).toBe('');
    expect(peakMemory(measuredCost)).toBe('3.1 GiB of 16.0 GiB');
    expect(peakMemory({ cpu_efficiency: 1, peak_memory: GIB })).toBe('1.0 GiB');
    expect(stepEfficiencyTitle({ cached: true })).toMatch(/^Not measured/);
    const text = 'step train used at most 3.1 GiB and 0.8 GPU; it held 16 GiB memory limit and 1 GPU: memory: 4GiB would do';
    expect(runSuggestions({ suggestions: [{ step: 'train', text, suggest: { memory: '4GiB' } }, { bad: 1 }, 'x'] })).toEqual([
      { step: 'train', text, suggest: { memory: '4GiB' } }
    ]);
    expect(runSuggestions({})).toEqual([]);
    expect(clusterWarnings({ warnings: [WASTE, 3, '', DRIFT] })).toEqual([WASTE, DRIFT]);
    expect(clusterWarnings({})).toEqual([]);
  });
});

describe('the card and the charts of a cluster', () => {
  let server: FakeServer;
  const widgets: Widget[] = [];
  afterEach(() => widgets.splice(0).forEach(w => w.dispose()));

  async function sidebar() {
    const commands = new CommandRegistry();
    const model = new PanelModel({ requester: server.requester(), interval: 600000 });
    const added: Widget[] = [];
    const shell = {
      add: (w: Widget) => {
        added.push(w);
        widgets.push(w);
        Widget.attach(w, document.body);
      },
      activateById: jest.fn()
    } as unknown as JupyterFrontEnd.IShell;
    const restored: any[] = [];
    const restorer = { restore: (_tracker: unknown, how: unknown) => (restored.push(how), Promise.resolve()) };
    ChartCommands.add({ commands, shell, model, ids: CommandIDs, restorer: restorer as unknown as ILayoutRestorer });
    const panel = new AiinfraPanel({ model, commands, commandIDs: CommandIDs });
    widgets.push(panel);
    Widget.attach(panel, document.body);
    model.visible = true;
    await model.refresh();
    return { panel, model, commands, added, restored };
  }

  beforeEach(() => {
    server = new FakeServer();
    server.clusters = [
      cluster('idle', { gpus: ['0'], cost: measuredCost, warnings: [WASTE, DRIFT] } as any),
      cluster('plain', { cost: { worker_hours: 0.5, core_hours: 2, gpu_hours: 0, memory_gb_hours: 1 } })
    ];
  });

  it('shows the warnings and the efficiency on the card, each figure whole', async () => {
    const { panel } = await sidebar();
    const card = await waitFor(() => $('.aiinfra-cluster[data-name="idle"]', panel.node), 'the card');
    const warnings = Array.from(card.querySelectorAll('.aiinfra-warning')).map(w => w.textContent);
    expect(warnings).toEqual([`warning: ${WASTE}`, `warning: ${DRIFT}`]);
    const parts = Array.from(card.querySelectorAll('.aiinfra-efficiency-part')).map(p => p.textContent!.replace(/ · $/, ''));
    expect(parts).toEqual(['CPU 42% of 1.20 core-h', 'GPU 7% of 2.00 GPU-h', 'peak memory 3.1 GiB of 16.0 GiB']);
    expect($('.aiinfra-efficiency-label', card)!.textContent).toBe('efficiency: ');
    // The usage line keeps its figures; a cluster without measurements or warnings shows neither.
    expect(Array.from(card.querySelectorAll('.aiinfra-cost-part')).map(p => p.textContent!.replace(/ · $/, ''))).toEqual([
      '1.00 worker-h',
      '1.20 core-h',
      '2.00 GPU-h',
      '8.00 GB-h memory'
    ]);
    const plain = $('.aiinfra-cluster[data-name="plain"]', panel.node)!;
    expect($('.aiinfra-warnings', plain)).toBeNull();
    expect($('.aiinfra-efficiency', plain)).toBeNull();
  });

  it('switches the charts to a cluster, whose hosts open as a restorable panel', async () => {
    server.hostMetrics.idle = {
      as_of: 20,
      hosts: [
        {
          host: 'node-a',
          workers: 2,
          samples: [
            { timestamp: 10, host: { cpu_percent: 55, memory_used: GIB, memory_total: 4 * GIB }, gpus: [{ index: 0, utilization: 3 }] }
          ]
        },
        { host: 'node-b', workers: 1, samples: [{ timestamp: 10, host: { cpu_percent: 5 }, gpus: [] }] }
      ]
    };
    const { panel, added, restored, commands } = await sidebar();
    const select = await waitFor(() => $('.aiinfra-chart-source select', panel.node) as HTMLSelectElement, 'the switch');
    const options = Array.from(select.options).map(o => [o.value, o.textContent]);
    expect(options).toEqual([['', 'this machine'], ['idle', 'cluster idle'], ['plain', 'cluster plain']]);
    expect(Array.from(panel.node.querySelectorAll<HTMLElement>('.aiinfra-chart-button')).map(b => b.dataset.chart)).toEqual(['machine']);
    type(select, 'idle');
    const hosts = await waitFor(() => $('.aiinfra-chart-button[data-chart="hosts"]', panel.node), 'the hosts button');
    expect(hosts.textContent).toBe('Hosts and GPUs');
    hosts.click();
    const charts = await waitFor(() => added.find(w => w instanceof ClusterChartsPanel) as ClusterChartsPanel, 'the panel');
    expect(charts.cluster).toBe('idle');
    await waitFor(() => charts.node.querySelectorAll('.aiinfra-host-card').length === 2, 'both hosts');
    expect($('.aiinfra-host-card[data-host="node-a"] .aiinfra-gpu-tile[data-gpu="0"]', charts.node)!.textContent).toContain('GPU 0: 3%');
    // The panel says what the cluster used and warns as the card does.
    expect($('.aiinfra-cluster-efficiency', charts.node)!.textContent).toContain('GPU 7% of 2.00 GPU-h');
    expect($('.aiinfra-warning', charts.node)!.textContent).toContain('wasteful');
    // The same command again shows the same panel; the machine's chart is another panel.
    await commands.execute(CommandIDs.openChart, { chart: 'hosts', cluster: 'idle' });
    await commands.execute(CommandIDs.openChart, { chart: 'machine' });
    expect(added.map(w => w.constructor.name)).toEqual(['ClusterChartsPanel', 'ChartPanel']);
    // What the layout restorer stores for each and runs after a reload.
    const [how] = restored;
    expect(how.command).toBe(CommandIDs.openChart);
    expect(how.args(charts)).toEqual({ chart: 'hosts', cluster: 'idle' });
    expect(how.name(charts)).toBe('hosts:idle');
    expect(how.args(added[1] as ChartPanel)).toEqual({ chart: 'machine' });
    expect(how.name(added[1])).toBe('machine');
    expect(commands.label(CommandIDs.openChart, { chart: 'hosts', cluster: 'idle' })).toBe('aiinfra: Charts of idle');
    // Stopped clusters leave the switch: back to this machine.
    server.clusters = [];
    await panel.model.refresh();
    await waitFor(() => $('.aiinfra-chart-button[data-chart="machine"]', panel.node), 'the machine again');
    expect(select.value).toBe('');
  });
});

describe("the run view's efficiency", () => {
  it("shows each step's efficiency and peak memory against its limit, and the run's right-sizing", async () => {
    const fake = new FakeRuns();
    const stepCost = { ...measuredCost, gpu_efficiency: 0.02, gpu_peak: 0.04, held: { gpus: 1 } };
    const text = 'step train used at most 3.1 GiB and 0.04 GPU; it held 16 GiB memory limit and 1 GPU: memory: 4GiB and resources: {GPU: 0.25} would do';
    fake.runs = [
      record(
        'r1',
        10,
        {
          prep: { status: 'ok', duration: 2, cost: { core_hours: 0.001, cpu_efficiency: 0.93, gpu_hours: 0, peak_memory: GIB / 2, memory_limit: null } },
          train: { status: 'ok', upstream: ['prep'], cost: stepCost },
          old: { status: 'cached', upstream: ['prep'], cost: { cached: true } }
        },
        {
          cost: { ...measuredCost, steps: 2 },
          suggestions: [
            { step: 'train', text, suggest: { memory: '4GiB', resources: { GPU: 0.25 } } },
            { step: 'prep', text: 'step prep used at most 0.5 GiB: well sized', suggest: {} }
          ]
        } as any
      )
    ];
    const commands = new CommandRegistry();
    const model = new RunsModel({ requester: fake.requester(), interval: 60000 });
    const ids = { openExecuted: 'o', cancelRun: 'c', rerunFailed: 'r', resumeRun: 'u', runFrom: 'f' };
    const view = new RunsView({ model, commands, commandIDs: ids });
    model.select('r1');
    Widget.attach(view, document.body);
    await model.refresh();
    await waitFor(() => $('.aiinfra-run-detail[data-run-id="r1"] .aiinfra-step-row', view.node), 'the steps');
    const cell = (step: string, kind: string) => $(`.aiinfra-step-row[data-step="${step}"] .aiinfra-step-${kind}`, view.node)!;
    expect(cell('train', 'efficiency').textContent).toBe('CPU 42% · GPU 2%');
    expect(cell('train', 'efficiency').title).toBe('CPU 42% of 1.2 core-h; GPU 2% of 2 GPU-h; peak memory 3.1 GiB of 16.0 GiB');
    expect(cell('train', 'peak').textContent).toBe('3.1 GiB of 16.0 GiB');
    expect(cell('prep', 'efficiency').textContent).toBe('CPU 93%');
    expect(cell('prep', 'peak').textContent).toBe('512 MiB');
    expect(cell('old', 'efficiency').textContent).toBe('');
    const headers = Array.from(view.node.querySelectorAll('.aiinfra-steps th')).map(th => th.textContent);
    expect(headers).toContain('efficiency');
    expect($('.aiinfra-run-efficiency', view.node)!.textContent).toBe('CPU 42% of 1.2 core-h · GPU 7% of 2 GPU-h · peak memory 3.1 GiB of 16.0 GiB');
    // A short run in the units of its cost cells: core-s, not 0.000 core-h.
    expect(efficiencyParts({ core_hours: 0.00012, cpu_efficiency: 0.09 }, undefined, (h, what) => `${Math.round(h * 3600)} ${what}-s`)).toEqual([
      'CPU 9% of 0 core-s'
    ]);
    const suggestions = Array.from(view.node.querySelectorAll<HTMLElement>('.aiinfra-suggestion')).map(li => [
      li.dataset.step,
      li.classList.contains('aiinfra-mod-change'),
      li.textContent
    ]);
    expect(suggestions).toEqual([
      ['train', true, text],
      ['prep', false, 'step prep used at most 0.5 GiB: well sized']
    ]);
    view.dispose();
  });
});
