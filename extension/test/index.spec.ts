import { JupyterFrontEnd } from '@jupyterlab/application';
import { ICommandPalette } from '@jupyterlab/apputils';
import { CommandRegistry } from '@lumino/commands';
import { Widget } from '@lumino/widgets';

import plugin, { CommandIDs } from '../src/index';
import { AiinfraPanel } from '../src/panel';
import { ScheduleCommands } from '../src/pipelines/schedules';
import { $, accept, dialog, type, waitFor } from './dom';
import { cluster, FakeServer } from './fakeserver';

/** What activate touches of the application: a real command registry, a recording shell. */
function fakeApp() {
  const added: Array<{ widget: Widget; area: string }> = [];
  const app = {
    commands: new CommandRegistry(),
    shell: {
      add: (widget: Widget, area: string) => added.push({ widget, area }),
      activateById: jest.fn()
    },
    contextMenu: { addItem: jest.fn() },
    docRegistry: { addWidgetExtension: jest.fn() },
    serviceManager: { contents: null }
  };
  return { app, added };
}

describe('plugin activation', () => {
  const server = new FakeServer('/');
  const realFetch = globalThis.fetch;
  beforeAll(() => {
    // ServerConnection.makeSettings() takes the global fetch: the fake server answers.
    globalThis.fetch = server.fetch as typeof fetch;
  });
  afterAll(() => {
    globalThis.fetch = realFetch;
  });

  it('registers every command, the palette items, the panel and the context menu', async () => {
    const { app, added } = fakeApp();
    const palette: string[] = [];
    const fakePalette = { addItem: (item: { command: string }) => palette.push(item.command) };
    plugin.activate(app as unknown as JupyterFrontEnd, fakePalette as unknown as ICommandPalette, null, null, null, null);

    const ids = Object.values(CommandIDs);
    expect(ids).toHaveLength(17);
    expect(new Set(ids).size).toBe(ids.length);
    for (const id of ids) {
      expect(app.commands.hasCommand(id)).toBe(true);
      expect(app.commands.label(id)).toMatch(/^aiinfra: /);
    }
    // Every command id, and the schedules' two (their own ids: pipelines/schedules.tsx).
    expect(palette.sort()).toEqual([...ids, ScheduleCommands.open, ScheduleCommands.schedule].sort());
    expect(app.commands.label(CommandIDs.adaptCluster, { name: 'c1' })).toBe('aiinfra: Adapt c1');
    expect(app.contextMenu.addItem).toHaveBeenCalledWith(
      expect.objectContaining({ command: CommandIDs.runPipeline, selector: expect.stringContaining('yaml') })
    );
    expect(app.contextMenu.addItem).toHaveBeenCalledWith(
      expect.objectContaining({ command: CommandIDs.addToPipeline, selector: '.jp-Notebook' })
    );
    expect(app.docRegistry.addWidgetExtension).toHaveBeenCalledWith('Notebook', expect.anything());

    expect(added.map(a => a.area)).toEqual(['left']);
    const panel = added[0].widget as AiinfraPanel;
    expect(panel).toBeInstanceOf(AiinfraPanel);
    expect(panel.id).toBe('aiinfra-sidebar');

    // The commands reach the server through ServerConnection: stop one cluster.
    server.clusters = [cluster('c1')];
    await panel.model.refresh();
    const done = app.commands.execute(CommandIDs.stopCluster, { name: 'c1' });
    await dialog();
    await accept();
    await done;
    expect(server.changes).toEqual([{ method: 'DELETE', path: 'clusters/c1', body: null }]);

    await app.commands.execute(CommandIDs.openPanel);
    expect(app.shell.activateById).toHaveBeenCalledWith('aiinfra-sidebar');
    panel.dispose();
  });

  it('asks which cluster when run from the palette without a name', async () => {
    const { app, added } = fakeApp();
    plugin.activate(app as unknown as JupyterFrontEnd, null, null, null, null, null);
    const panel = added[0].widget as AiinfraPanel;
    server.clusters = [cluster('only')];
    server.calls = [];
    await panel.model.refresh();
    const done = app.commands.execute(CommandIDs.scaleCluster);
    const picker = await dialog('select');
    expect(Array.from(picker.querySelectorAll('option')).map(o => o.textContent)).toEqual(['only']);
    await accept();
    const input = (await waitFor(() => $('.jp-Dialog input'), 'the workers input')) as HTMLInputElement;
    expect(input.value).toBe('1');
    type(input, '2');
    await waitFor(() => input.value === '2', 'typing');
    await accept();
    await done;
    expect(server.changes).toEqual([{ method: 'PATCH', path: 'clusters/only', body: { workers: 2 } }]);
    panel.dispose();
  });
});
