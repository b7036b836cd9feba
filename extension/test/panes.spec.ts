/** Dashboard plots as panels: listed from the dashboard, opened once, restored, and honest when the cluster stops. */

import { JupyterFrontEnd } from '@jupyterlab/application';
import { CommandRegistry } from '@lumino/commands';
import { Widget } from '@lumino/widgets';

import { DashboardCommands } from '../src/commands/dashboards';
import { DashboardPane, paneNote } from '../src/dashboard';
import { CommandIDs } from '../src/index';
import { PanelModel } from '../src/model';
import { AiinfraPanel } from '../src/panel';
import { $, type, waitFor } from './dom';
import { cluster, FakeServer } from './fakeserver';

describe('dashboard panes', () => {
  let server: FakeServer;
  let model: PanelModel;
  let panel: AiinfraPanel;
  beforeEach(async () => {
    server = new FakeServer();
    server.clusters = [cluster('c1')];
    model = new PanelModel({ requester: server.requester(), interval: 600000 });
    model.visible = true;
    await model.refresh();
  });
  afterEach(() => panel?.dispose());

  it('lists the individual plots of a card and opens each as its own panel, once', async () => {
    const commands = new CommandRegistry();
    const added: Widget[] = [];
    const shell = { add: (w: Widget) => added.push(w), activateById: jest.fn() } as unknown as JupyterFrontEnd.IShell;
    const restorer = { restore: jest.fn(async () => undefined) };
    DashboardCommands.add({ commands, shell, model, ids: CommandIDs, baseUrl: '/base/', restorer: restorer as any });
    panel = new AiinfraPanel({ model, commands, commandIDs: CommandIDs });
    Widget.attach(panel, document.body);
    const details = await waitFor(() => $('.aiinfra-cluster[data-name="c1"] details.aiinfra-panes') as HTMLDetailsElement, 'panes');
    details.open = true;
    details.dispatchEvent(new Event('toggle'));
    const button = await waitFor(() => $('.aiinfra-pane-button[data-plot="individual-task-stream"]'), 'the plot list');
    expect(button.textContent).toBe('Task Stream');
    button.click();
    await waitFor(() => added.length === 1, 'the pane');
    button.click();
    await new Promise(resolve => setTimeout(resolve, 20));
    expect(added).toHaveLength(1); // the same pane is activated, not opened twice
    const pane = added[0] as DashboardPane;
    expect(pane.content.url).toBe('/base/aiinfra/dashboard/c1/individual-task-stream');
    expect(pane.title.label).toBe('Task Stream · c1');
    // The layout restorer knows how to reopen it after a reload.
    const how = (restorer.restore.mock.calls[0] as any[])[1];
    expect(how.command).toBe(CommandIDs.openPane);
    expect(how.args(pane)).toEqual({ name: 'c1', plot: 'individual-task-stream', label: 'Task Stream' });
    expect(how.name(pane)).toBe('c1:individual-task-stream');
    pane.dispose();
  });

  it('groups the plots, filters them by words and offers GPU plots only with GPUs', async () => {
    server.plots = {
      'Individual Task Stream': '/individual-task-stream',
      'Individual Workers Memory Timeseries': '/individual-workers-memory-timeseries',
      'Individual Workers Memory': '/individual-workers-memory',
      'Individual Aggregate Time Per Action': '/individual-aggregate-time-per-action',
      'Individual Bandwidth Types': '/individual-bandwidth-types',
      'Individual Gpu Memory': '/individual-gpu-memory'
    };
    panel = new AiinfraPanel({ model, commands: new CommandRegistry(), commandIDs: CommandIDs });
    Widget.attach(panel, document.body);
    const details = await waitFor(() => $('.aiinfra-cluster[data-name="c1"] details.aiinfra-panes') as HTMLDetailsElement, 'panes');
    expect(details.open).toBe(false); // collapsed until asked
    details.open = true;
    details.dispatchEvent(new Event('toggle'));
    await waitFor(() => $('.aiinfra-plot-group'), 'the groups');
    const groups = () =>
      Array.from(document.querySelectorAll<HTMLElement>('.aiinfra-plot-group')).map(
        g => `${g.dataset.group}: ${Array.from(g.querySelectorAll('.aiinfra-pane-button')).map(b => b.textContent).join(', ')}`
      );
    expect(groups()).toEqual([
      'tasks: Aggregate Time Per Action, Task Stream',
      'memory: Workers Memory, Workers Memory Timeseries',
      'network: Bandwidth Types'
    ]);
    expect($('.aiinfra-panes summary')!.textContent).toBe('Dashboard plots (5)');
    expect($('.aiinfra-plots-hidden')!.textContent).toBe('1 GPU plot not offered: no worker of c1 reports a GPU.');
    // The filter: every word, any case; nothing matching says so.
    const filter = $('.aiinfra-plot-filter') as HTMLInputElement;
    type(filter, 'memory TIME');
    await waitFor(() => groups().length === 1, 'the filtered list');
    expect(groups()).toEqual(['memory: Workers Memory Timeseries']);
    type(filter, 'zzz');
    await waitFor(() => $('.aiinfra-plots-none'), 'no match');
    expect($('.aiinfra-plots-none')!.textContent).toBe('No plot matches “zzz”.');
    // A worker with a GPU joins: the next opening offers the GPU plot in its group.
    server.gpuWorkers = 1;
    type(filter, '');
    details.open = false;
    details.dispatchEvent(new Event('toggle'));
    details.open = true;
    details.dispatchEvent(new Event('toggle'));
    await waitFor(() => $('.aiinfra-plot-group[data-group="gpu"] [data-plot="individual-gpu-memory"]'), 'the GPU plot');
    expect($('.aiinfra-plots-hidden')).toBeNull();
  });

  it('says the cluster stopped instead of showing dead plots, and comes back with it', () => {
    const pane = new DashboardPane({ model, baseUrl: '/', cluster: 'c1', plot: 'individual-progress', label: 'Progress' });
    Widget.attach(pane, document.body);
    const frame = () => pane.node.querySelector('iframe')!;
    expect(pane.content.note).toBeNull();
    expect(frame().getAttribute('src')).toBe('/aiinfra/dashboard/c1/individual-progress');

    model.apply({ type: 'clusters', clusters: [] });
    expect(pane.content.note).toBe(paneNote('c1', null));
    expect($('.aiinfra-pane-note', pane.node)!.textContent).toContain('Cluster c1 has stopped');
    expect(frame().getAttribute('src')).toBe('about:blank');

    model.apply({ type: 'clusters', clusters: [cluster('c1')] });
    expect(pane.content.note).toBeNull();
    expect(frame().getAttribute('src')).toBe('/aiinfra/dashboard/c1/individual-progress');
    expect(paneNote('c1', 'unreachable')).toContain('does not answer');
    // A cluster whose owner has not reported lately may still run: the page is shown.
    expect(paneNote('c1', 'unknown')).toBeNull();
    expect(paneNote('c1', 'lost')).toContain('was lost');
    pane.dispose();
  });
});

describe('dragging a card', () => {
  it('carries a code cell for notebooks and plain text for editors', () => {
    const data = AiinfraPanel.dragData('c1');
    const cells = data.getData(AiinfraPanel.CELL_MIME) as any[];
    expect(AiinfraPanel.CELL_MIME).toBe('application/vnd.jupyter.cells');
    expect(cells).toHaveLength(1);
    expect(cells[0].cell_type).toBe('code');
    expect(cells[0].source).toContain('client = manager.connect("c1")');
    expect(data.getData('text/plain')).toBe(cells[0].source);
  });
});
