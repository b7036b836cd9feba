/**
 * Every string the sidebar, its dialogs, charts and panes show goes through the lab's
 * translator (issue 25 item 20): rendered with a translator that marks what it
 * translates, nothing visible is left unmarked but data (names, numbers, the server's
 * own words). Without the translator the same widgets read as before.
 */

import { JupyterFrontEnd } from '@jupyterlab/application';
import { Dialog } from '@jupyterlab/apputils';
import { ITranslator, nullTranslator, TranslationBundle } from '@jupyterlab/translation';
import { CommandRegistry } from '@lumino/commands';
import { Widget } from '@lumino/widgets';

import { ChartPanel } from '../src/chartview';
import { ClusterChartsPanel } from '../src/clustercharts';
import { ClusterCommands } from '../src/commands/clusters';
import { DashboardPane } from '../src/dashboard';
import { AdaptForm, ScaleForm, StartClusterForm } from '../src/dialog';
import { bundle } from '../src/i18n';
import { CommandIDs } from '../src/index';
import { PanelModel } from '../src/model';
import { AiinfraPanel } from '../src/panel';
import { RunsModel } from '../src/pipelines/runs';
import { RunsView } from '../src/pipelines/runview';
import { $, cancel, dialog, waitFor } from './dom';
import { FakeRuns, record } from './fakeruns';
import { BACKENDS, cluster, FakeServer } from './fakeserver';

/** A translator whose every answer is wrapped in ⟦ ⟧ (arguments filled in first). */
const MARKING: ITranslator = {
  languageCode: 'xx',
  load: (domain: string) => {
    expect(domain).toBe('aiinfra');
    const plain = nullTranslator.load(domain) as any;
    const marked: any = {};
    for (const key of ['__', '_n', '_p', '_np', 'gettext', 'ngettext', 'pgettext', 'npgettext', 'dcnpgettext']) {
      marked[key] = (...args: any[]) => `⟦${plain[key](...args)}⟧`;
    }
    return marked as TranslationBundle;
  }
};

/** What a widget shows a reader: its text and the attributes read out or hovered. */
function visibleTexts(root: Element): string[] {
  const texts: string[] = [];
  const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    texts.push(node.textContent ?? '');
  }
  for (const element of Array.from(root.querySelectorAll('[title], [placeholder], [aria-label]'))) {
    for (const name of ['title', 'placeholder', 'aria-label']) {
      texts.push(element.getAttribute(name) ?? '');
    }
  }
  return texts;
}

/** The words left once every marked part and every piece of data is taken out. */
function unmarked(root: Element, data: string[]): string[] {
  const left: string[] = [];
  const longestFirst = [...data].sort((a, b) => b.length - a.length);
  for (let text of visibleTexts(root)) {
    let before;
    do {
      before = text;
      text = text.replace(/⟦[^⟦⟧]*⟧/g, ' '); // innermost first: marks may hold marks
    } while (text !== before);
    for (const datum of longestFirst) {
      text = text.split(datum).join(' ');
    }
    left.push(...(text.match(/[A-Za-z]{2,}/g) ?? []));
  }
  return left;
}

/** A waste warning as the server writes it (metrics/efficiency.py): the server's words. */
const WASTE = 'wasteful: 1 GPU(s) held under 10% utilisation for 2s (window 2s); stop or scale it down';

/** The server's own words and the fixtures' names: data, not the extension's strings. */
const DATA = [
  WASTE, 'node', 'NVIDIA', 'H100',
  'aiinfra', 'auto', 'c1', 'gpu', 'fakehost', 'local', 'cuda', 'address', 'toy', 'tcp', 'ucx', 'debug', 'GiB', 'KiB', 'MiB',
  'NVML not found', 'Task Stream', 'Progress', 'Workers Memory', 'GPU Memory',
  ...BACKENDS.flatMap(b => [b.description, b.reason ?? '', ...b.options.flatMap(o => [o.help, (o.flag ?? '').replace(/^-+/, '')])])
].filter(d => d !== '');

describe('translation', () => {
  let server: FakeServer;
  const widgets: Widget[] = [];
  beforeEach(() => {
    server = new FakeServer();
    server.clusters = [
      cluster('c1', {
        cost: {
          worker_hours: 0.5,
          core_hours: 2,
          gpu_hours: 1,
          memory_gb_hours: 1,
          idle_since: Date.now() / 1000,
          idle_timeout: 600,
          cpu_efficiency: 0.4,
          gpu_efficiency: 0.05,
          peak_memory: 2 ** 30,
          memory_limit: 2 ** 32
        },
        warnings: [WASTE]
      } as any),
      cluster('gpu', { backend: 'cuda', gpus: ['0'], adapt: '1:4', status: 'starting' })
    ];
  });
  afterEach(() => {
    Dialog.flush();
    widgets.splice(0).forEach(w => w.dispose());
  });

  async function sidebar(translator?: ITranslator) {
    const model = new PanelModel({ requester: { ...server.requester(), trans: bundle(translator) }, interval: 600000 });
    const commands = new CommandRegistry();
    const shell = { add: jest.fn(), activateById: jest.fn() } as unknown as JupyterFrontEnd.IShell;
    ClusterCommands.add({ commands, shell, model, ids: CommandIDs, notebooks: null, defaultBackend: () => 'local', translator });
    const panel = new AiinfraPanel({ model, commands, commandIDs: CommandIDs, translator });
    widgets.push(panel);
    Widget.attach(panel, document.body);
    model.visible = true;
    await model.refresh();
    const details = await waitFor(() => $('.aiinfra-cluster[data-name="c1"] details.aiinfra-panes') as HTMLDetailsElement, 'panes');
    details.open = true;
    details.dispatchEvent(new Event('toggle'));
    await waitFor(() => $('.aiinfra-plot-filter'), 'the plot list');
    return { panel, model, commands };
  }

  it('leaves nothing in the sidebar unmarked but data', async () => {
    const { panel } = await sidebar(MARKING);
    expect($('.aiinfra-plots-hidden', panel.node)).not.toBeNull(); // the GPU note is rendered too
    expect($('.aiinfra-warning', panel.node)).not.toBeNull(); // and the card's warning and efficiency
    expect($('.aiinfra-efficiency', panel.node)).not.toBeNull();
    expect($('.aiinfra-chart-source option[value="c1"]', panel.node)).not.toBeNull();
    expect(unmarked(panel.node, DATA)).toEqual([]);
  });

  it('leaves nothing in the dialogs unmarked but data', async () => {
    const { commands } = await sidebar(MARKING);
    void commands.execute(CommandIDs.startCluster);
    const start = await dialog('select[name="backend"]');
    expect(unmarked(start, DATA)).toEqual([]);
    await cancel();
    const trans = bundle(MARKING);
    for (const form of [
      new StartClusterForm({ backends: BACKENDS, defaultBackend: 'toy', error: 'down', auto: 'local', trans }),
      new AdaptForm({ minimum: '1', maximum: '2', trans }),
      new ScaleForm(3, trans)
    ]) {
      widgets.push(form);
      Widget.attach(form, document.body);
      form.update();
      await waitFor(() => form.node.textContent, 'the form');
      form.setError({ field: null, message: trans.__('refused') });
      await waitFor(() => $('.aiinfra-form-error', form.node), 'its error');
      expect(unmarked(form.node, DATA)).toEqual([]);
    }
  });

  it('leaves nothing in chart panels and dashboard panes unmarked', async () => {
    const { model } = await sidebar(MARKING);
    for (const kind of ['machine', 'gpu-utilization', 'gpu-pcie'] as const) {
      const chart = new ChartPanel({ model, kind, translator: MARKING });
      widgets.push(chart);
      Widget.attach(chart, document.body);
      await waitFor(() => chart.node.querySelector('.aiinfra-chart'), 'the chart');
      expect(unmarked(chart.content.node, DATA)).toEqual([]);
      expect(chart.title.label).toMatch(/^⟦.*⟧$/);
    }
    server.hostMetrics.c1 = {
      as_of: 2,
      hosts: [
        {
          host: 'node-a',
          workers: 2,
          samples: [
            {
              timestamp: 1,
              host: { cpu_percent: 50, memory_used: 1, memory_total: 2 },
              gpus: [{ index: 0, name: 'NVIDIA H100', utilization: 3, memory_used: 1, memory_total: 2, power_watts: 70 }]
            }
          ]
        }
      ]
    };
    const hosts = new ClusterChartsPanel({ model, name: 'c1', translator: MARKING });
    widgets.push(hosts);
    Widget.attach(hosts, document.body);
    const tile = await waitFor(() => $('.aiinfra-gpu-tile', hosts.node), 'the GPU tile');
    expect($('.aiinfra-cluster-efficiency', hosts.node)).not.toBeNull();
    expect(unmarked(hosts.content.node, DATA)).toEqual([]);
    tile.click();
    await waitFor(() => $('.aiinfra-gpu-enlarged', hosts.node), 'the enlarged GPU');
    expect(unmarked(hosts.content.node, DATA)).toEqual([]);
    expect(hosts.title.label).toMatch(/^⟦.*⟧$/);
    const pane = new DashboardPane({ model, baseUrl: '/', cluster: 'gone', plot: 'individual-progress', label: 'Progress', translator: MARKING });
    widgets.push(pane);
    Widget.attach(pane, document.body);
    expect(pane.content.note).toMatch(/^⟦Cluster gone has stopped/);
    expect(pane.title.label).toBe('⟦Progress · gone⟧');
  });

  it("leaves nothing in the run view's steps and right-sizing unmarked", async () => {
    const fake = new FakeRuns();
    const cost = { core_hours: 1, gpu_hours: 1, cpu_efficiency: 0.5, gpu_efficiency: 0.1, peak_memory: 2 ** 30, memory_limit: 2 ** 32 };
    const suggestion = 'step train used at most 1 GiB: memory: 1.25GiB would do';
    fake.runs = [
      record('r1', 10, { train: { status: 'ok', cost }, old: { status: 'ok', cost: { core_hours: 1 } } }, {
        cost,
        suggestions: [{ step: 'train', text: suggestion, suggest: { memory: '1.25GiB' } }]
      } as any)
    ];
    const model = new RunsModel({ requester: fake.requester(), interval: 600000 });
    const ids = { openExecuted: 'o', cancelRun: 'c', rerunFailed: 'r', resumeRun: 'u', runFrom: 'f' };
    const view = new RunsView({ model, commands: new CommandRegistry(), commandIDs: ids, translator: MARKING });
    widgets.push(view);
    model.select('r1');
    Widget.attach(view, document.body);
    await model.refresh();
    const sizing = await waitFor(() => $('.aiinfra-run-sizing', view.node), 'the right-sizing');
    expect($('.aiinfra-step-row[data-step="train"] .aiinfra-step-efficiency', view.node)!.textContent).toMatch(/^⟦/);
    for (const part of [$('.aiinfra-steps', view.node)!, sizing]) {
      expect(unmarked(part, [...DATA, suggestion, 'train', 'old', 'r1', 'demo'])).toEqual([]);
    }
  });

  it('reads as before without a translator', async () => {
    const { panel } = await sidebar();
    expect(panel.node.textContent).not.toContain('⟦');
    expect($('.aiinfra-cluster[data-name="c1"] .aiinfra-cluster-summary', panel.node)!.textContent).toBe(
      '1 worker · 2 threads · 2.0 GiB memory'
    );
  });
});
