import { JupyterFrontEnd } from '@jupyterlab/application';
import { Dialog } from '@jupyterlab/apputils';
import { CommandRegistry } from '@lumino/commands';
import { Widget } from '@lumino/widgets';

import { ClusterCommands } from '../src/commands/clusters';
import { CommandIDs } from '../src/index';
import { PanelModel } from '../src/model';
import { AiinfraPanel } from '../src/panel';
import { $, accept, cancel, dialog, type, waitFor } from './dom';
import { cluster, FakeServer } from './fakeserver';

/** The sidebar with the real cluster commands, over a fake server. */
async function sidebar(server: FakeServer) {
  const commands = new CommandRegistry();
  const model = new PanelModel({ requester: server.requester(), interval: 600000 });
  const shell = { add: jest.fn(), activateById: jest.fn() } as unknown as JupyterFrontEnd.IShell;
  ClusterCommands.add({
    commands,
    shell,
    model,
    ids: CommandIDs,
    notebooks: null,
    defaultBackend: () => 'local'
  });
  const panel = new AiinfraPanel({ model, commands, commandIDs: CommandIDs });
  Widget.attach(panel, document.body);
  model.visible = true; // as when shown: the poll's refreshes go through
  await model.refresh();
  return { panel, model, shell };
}

const card = (name: string) => $(`.aiinfra-cluster[data-name="${name}"]`);
const button = (name: string, action: string) => $(`button.aiinfra-${action}`, card(name)!)!;

describe('sidebar', () => {
  let server: FakeServer;
  let panel: AiinfraPanel;
  beforeEach(() => {
    server = new FakeServer();
    server.clusters = [cluster('c1'), cluster('gpu', { backend: 'cuda', workers: 2, gpus: ['0', '1'], adapt: '1:4' })];
  });
  afterEach(() => {
    Dialog.flush(); // a failed test leaves no dialog for the next
    panel.dispose();
  });

  it('renders one card per cluster from the clusters payload', async () => {
    ({ panel } = await sidebar(server));
    await waitFor(() => card('gpu'), 'the cards');
    const names = Array.from(document.querySelectorAll<HTMLElement>('.aiinfra-cluster')).map(c => c.dataset.name);
    expect(names).toEqual(['c1', 'gpu']);
    expect(card('gpu')!.textContent).toContain('2 workers · 2 threads · 2.0 GiB memory · GPUs 0,1 · adapt 1:4');
    expect($('.aiinfra-status-running', card('c1')!)!.textContent).toBe('running');
    const actions = Array.from(card('c1')!.querySelectorAll('.aiinfra-actions button')).map(b => b.textContent);
    expect(actions).toEqual(['Dashboard', 'Connect', 'Scale', 'Adapt', 'Stop']);
    expect($('.aiinfra-host')!.textContent).toContain('fakehost');
  });

  it('offers the GPU charts only where the sampler reports GPUs, the host chart always', async () => {
    ({ panel } = await sidebar(server));
    await waitFor(() => $('.aiinfra-chart-button'), 'the chart buttons');
    const charts = () => Array.from(document.querySelectorAll<HTMLElement>('.aiinfra-chart-button')).map(b => b.dataset.chart);
    expect(charts()).toEqual(['machine']);
    expect($('.aiinfra-no-gpu')!.textContent).toBe('NVML not found'); // the reason, once, in the sidebar
    panel.dispose();
    server.metrics = { gpus: [{ index: 0, name: 'A100', utilization: 5, memory_used: 1, memory_total: 2 }], reason: null, timestamp: 1 };
    ({ panel } = await sidebar(server));
    await waitFor(() => charts().length === 5, 'the GPU charts');
    expect(charts()).toEqual(['gpu-utilization', 'gpu-memory', 'gpu-pcie', 'gpu-nvlink', 'machine']);
  });

  it('shows what each cluster used and, with an idle timeout, when it stops', async () => {
    const idleSince = Date.now() / 1000 - 30;
    server.clusters = [
      cluster('c1', {
        cost: { worker_hours: 0.5, core_hours: 2, gpu_hours: 0, memory_gb_hours: 1.25, idle_since: idleSince, idle_timeout: 600 }
      }),
      cluster('gpu', { cost: { worker_hours: 1, core_hours: 4, gpu_hours: 12.5, memory_gb_hours: 8 } })
    ];
    ({ panel } = await sidebar(server));
    await waitFor(() => card('gpu'), 'the cards');
    // Each figure whole and labelled; GPU-h only where the cluster has GPUs (or used some).
    const parts = (name: string) =>
      Array.from(card(name)!.querySelectorAll('.aiinfra-cost-part')).map(p => p.textContent!.replace(/ · $/, ''));
    expect($('.aiinfra-cost', card('c1')!)!.textContent).toBe('used: 0.50 worker-h · 2.00 core-h · 1.25 GB-h memory');
    expect(parts('c1')).toEqual(['0.50 worker-h', '2.00 core-h', '1.25 GB-h memory']);
    expect(parts('gpu')).toEqual(['1.00 worker-h', '4.00 core-h', '12.5 GPU-h', '8.00 GB-h memory']);
    expect($('.aiinfra-idle', card('c1')!)!.textContent).toMatch(/^idle 3\ds · stops in 9m \d\ds \(at /);
    expect($('.aiinfra-idle', card('gpu')!)).toBeNull(); // no idle timeout: no clock
  });

  it('scales: PATCH {"workers": N}', async () => {
    ({ panel } = await sidebar(server));
    await waitFor(() => card('c1'), 'the card');
    button('c1', 'scale').click();
    type((await dialog('input')).querySelector('input')!, '3');
    await accept();
    await waitFor(() => card('c1')!.textContent!.includes('3 workers'), 'the card to show 3 workers');
    expect(server.changes).toEqual([{ method: 'PATCH', path: 'clusters/c1', body: { workers: 3 } }]);
  });

  it('adapts: PATCH {"adapt": "MIN:MAX"}, starting from the current bounds', async () => {
    ({ panel } = await sidebar(server));
    await waitFor(() => card('gpu'), 'the card');
    button('gpu', 'adapt').click();
    const body = await dialog('input[name="maximum"]');
    expect((body.querySelector('input[name="minimum"]') as HTMLInputElement).value).toBe('1');
    type(body.querySelector('input[name="maximum"]')!, '6');
    await waitFor(() => (body.querySelector('input[name="maximum"]') as HTMLInputElement).value === '6', 'typing');
    await accept();
    await waitFor(() => card('gpu')!.textContent!.includes('adapt 1:6'), 'the card to show adapt 1:6');
    expect(server.changes).toEqual([{ method: 'PATCH', path: 'clusters/gpu', body: { adapt: '1:6' } }]);
  });

  it('refuses bad adapt bounds without a request', async () => {
    ({ panel } = await sidebar(server));
    await waitFor(() => card('c1'), 'the card');
    button('c1', 'adapt').click();
    const body = await dialog('input[name="minimum"]');
    type(body.querySelector('input[name="minimum"]')!, '5');
    await waitFor(() => (body.querySelector('input[name="minimum"]') as HTMLInputElement).value === '5', 'typing');
    $('.jp-Dialog button.jp-mod-accept')!.click(); // bounds 5:1
    // The form stays open, the typed value kept, the error under the fields (issue 29 item 2).
    const error = await waitFor(() => $('.jp-Dialog .aiinfra-field-error'), 'the error under the field');
    expect(error.textContent).toContain('adapt: got "5:1"; allowed: MIN <= MAX');
    expect((body.querySelector('input[name="minimum"]') as HTMLInputElement).value).toBe('5');
    expect(document.querySelectorAll('.jp-Dialog').length).toBe(1);
    await cancel();
    expect(server.changes).toEqual([]);
  });

  it('stops only after confirmation: DELETE clusters/{name}', async () => {
    ({ panel } = await sidebar(server));
    await waitFor(() => card('c1'), 'the card');
    button('c1', 'stop').click();
    expect((await dialog()).textContent).toContain('are lost');
    await cancel();
    expect(server.changes).toEqual([]);

    button('c1', 'stop').click();
    await dialog();
    expect($('.jp-Dialog button.jp-mod-accept')!.classList.contains('jp-mod-warn')).toBe(true);
    await accept();
    await waitFor(() => !card('c1'), 'the card to go');
    expect(server.changes).toEqual([{ method: 'DELETE', path: 'clusters/c1', body: null }]);
    expect(card('gpu')).not.toBeNull();
  });

  it('starts a cluster with the body the generated dialog builds', async () => {
    ({ panel } = await sidebar(server));
    (await waitFor(() => $('button.aiinfra-start'), 'the start button')).click();
    const body = await dialog('select[name="backend"]');
    await waitFor(() => body.querySelector('option[data-backend="toy"]'), 'the backends');
    type(body.querySelector('select[name="backend"]')!, 'toy');
    await waitFor(() => body.querySelector('.aiinfra-backend-options[data-backend="toy"] [data-option="cores"]'), 'toy');
    type(body.querySelector('input[name="name"]')!, 'new1');
    type(body.querySelector('input[name="cores"]')!, '2');
    await waitFor(() => (body.querySelector('input[name="cores"]') as HTMLInputElement).value === '2', 'typing');
    await accept();
    await waitFor(() => card('new1'), 'the new card');
    expect(server.changes).toEqual([{ method: 'POST', path: 'clusters', body: { name: 'new1', backend: 'toy', cores: 2 } }]);
    expect(server.calls.filter(c => c.path === 'backends')).toHaveLength(1);
  });

  it('disables scale and adapt on a backend that does not manage workers', async () => {
    server.clusters = [cluster('att', { backend: 'address' })];
    let model: PanelModel;
    ({ panel, model } = await sidebar(server));
    await model.loadBackends();
    await waitFor(() => card('att') && button('att', 'scale').hasAttribute('disabled'), 'scale disabled');
    expect(button('att', 'adapt').hasAttribute('disabled')).toBe(true);
    expect(button('att', 'stop').hasAttribute('disabled')).toBe(false);
  });
});
