/**
 * aiinfra for JupyterLab: a sidebar with this machine's devices, every
 * registered Dask cluster and recent pipeline runs, plus `aiinfra:*` commands.
 * All data comes from the aiinfra server extension's REST API.
 */

import {
  ILayoutRestorer,
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import {
  Dialog,
  ICommandPalette,
  InputDialog,
  MainAreaWidget,
  showDialog,
  showErrorMessage
} from '@jupyterlab/apputils';
import { IFileBrowserFactory } from '@jupyterlab/filebrowser';
import { INotebookTracker, NotebookActions } from '@jupyterlab/notebook';
import { ServerConnection } from '@jupyterlab/services';
import { ISettingRegistry } from '@jupyterlab/settingregistry';
import { IFrame, LabIcon } from '@jupyterlab/ui-components';

import { dashboardUrl, IRequester } from './api';
import { StartClusterForm } from './dialog';
import { connectCode, formToBody, ICluster } from './model';
import { AiinfraPanel, CommandIDs, PanelModel } from './panel';

const PLUGIN_ID = 'aiinfra:plugin';

const ICON_SVG = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24">
<g class="jp-icon3" fill="#616161">
<rect x="3" y="3" width="7" height="7" rx="1.5"/><rect x="14" y="3" width="7" height="7" rx="1.5"/>
<rect x="3" y="14" width="7" height="7" rx="1.5"/><rect x="14" y="14" width="7" height="7" rx="1.5"/>
<rect x="9.5" y="6" width="5" height="1.2"/><rect x="9.5" y="17" width="5" height="1.2"/>
<rect x="6" y="9.5" width="1.2" height="5"/><rect x="17" y="9.5" width="1.2" height="5"/>
</g></svg>`;

export const aiinfraIcon = new LabIcon({ name: 'aiinfra:icon', svgstr: ICON_SVG });

async function reportFailure(title: string, action: () => Promise<unknown>): Promise<void> {
  try {
    await action();
  } catch (error) {
    await showErrorMessage(title, (error as Error).message ?? String(error));
  }
}

const plugin: JupyterFrontEndPlugin<void> = {
  id: PLUGIN_ID,
  description: 'Devices, Dask clusters and pipeline runs in the JupyterLab sidebar.',
  autoStart: true,
  optional: [ICommandPalette, ILayoutRestorer, ISettingRegistry, INotebookTracker, IFileBrowserFactory],
  activate: (
    app: JupyterFrontEnd,
    palette: ICommandPalette | null,
    restorer: ILayoutRestorer | null,
    settingRegistry: ISettingRegistry | null,
    notebooks: INotebookTracker | null,
    browserFactory: IFileBrowserFactory | null
  ) => {
    const serverSettings = ServerConnection.makeSettings();
    const requester: IRequester = {
      baseUrl: serverSettings.baseUrl,
      fetcher: (url, init) => ServerConnection.makeRequest(url, init, serverSettings)
    };
    let defaultBackend = 'auto';
    const model = new PanelModel(requester, 5000);
    const panel = new AiinfraPanel(model, app.commands);
    panel.id = 'aiinfra-sidebar';
    panel.title.icon = aiinfraIcon;
    panel.title.caption = 'aiinfra: devices, clusters, pipelines';
    app.shell.add(panel, 'left', { rank: 600 });
    if (restorer) {
      restorer.add(panel, 'aiinfra-sidebar');
    }

    if (settingRegistry) {
      const apply = (settings: ISettingRegistry.ISettings) => {
        const seconds = Number(settings.get('refreshInterval').composite) || 5;
        model.setInterval(Math.max(1, seconds) * 1000);
        defaultBackend = String(settings.get('defaultBackend').composite || 'auto');
      };
      settingRegistry
        .load(PLUGIN_ID)
        .then(settings => {
          apply(settings);
          settings.changed.connect(apply);
        })
        .catch(reason => console.warn('aiinfra: settings not loaded', reason));
    }

    const dashboards = new Map<string, MainAreaWidget<IFrame>>();
    const { commands } = app;
    const named = (args: any): string => String(args.name ?? '');

    commands.addCommand(CommandIDs.openPanel, {
      label: 'aiinfra: Show Sidebar',
      execute: () => app.shell.activateById(panel.id)
    });

    commands.addCommand(CommandIDs.refresh, {
      label: 'aiinfra: Refresh',
      execute: () => model.poll.refresh()
    });

    commands.addCommand(CommandIDs.startCluster, {
      label: 'aiinfra: Start Dask Cluster…',
      execute: async () => {
        const result = await showDialog({
          title: 'Start a Dask cluster',
          body: new StartClusterForm(defaultBackend),
          buttons: [Dialog.cancelButton(), Dialog.okButton({ label: 'Start' })]
        });
        if (!result.button.accept || !result.value) {
          return;
        }
        const { body, error } = formToBody(result.value);
        if (error || !body) {
          await showErrorMessage('Cannot start the cluster', error ?? 'invalid form');
          return;
        }
        const label = String(body.name ?? 'new cluster');
        model.setBusy(label, 'starting');
        await reportFailure('Cannot start the cluster', () =>
          model.request<ICluster>(['clusters'], 'POST', body)
        );
        model.setBusy(label, null);
        await model.poll.refresh();
      }
    });

    commands.addCommand(CommandIDs.scaleCluster, {
      label: args => (args.name ? `aiinfra: Scale ${named(args)}…` : 'aiinfra: Scale Cluster…'),
      execute: async args => {
        const name = named(args) || (await askName('Scale which cluster?'));
        if (!name) {
          return;
        }
        const answer = await InputDialog.getNumber({ title: `Workers for ${name}`, value: 2 });
        if (!answer.button.accept || answer.value === null) {
          return;
        }
        model.setBusy(name, 'scaling');
        await reportFailure(`Cannot scale ${name}`, () =>
          model.request(['clusters', name], 'PATCH', { workers: answer.value })
        );
        model.setBusy(name, null);
        await model.poll.refresh();
      }
    });

    commands.addCommand(CommandIDs.stopCluster, {
      label: args => (args.name ? `aiinfra: Stop ${named(args)}` : 'aiinfra: Stop Cluster…'),
      execute: async args => {
        const name = named(args) || (await askName('Stop which cluster?'));
        if (!name) {
          return;
        }
        model.setBusy(name, 'stopping');
        await reportFailure(`Cannot stop ${name}`, () => model.request(['clusters', name], 'DELETE'));
        model.setBusy(name, null);
        dashboards.get(name)?.dispose();
        await model.poll.refresh();
      }
    });

    commands.addCommand(CommandIDs.openDashboard, {
      label: args => (args.name ? `aiinfra: Dashboard of ${named(args)}` : 'aiinfra: Open Dask Dashboard…'),
      execute: async args => {
        const name = named(args) || (await askName('Dashboard of which cluster?'));
        if (!name) {
          return;
        }
        let widget = dashboards.get(name);
        if (!widget || widget.isDisposed) {
          const frame = new IFrame({
            sandbox: ['allow-scripts', 'allow-same-origin', 'allow-forms', 'allow-popups']
          });
          frame.url = dashboardUrl(serverSettings.baseUrl, name);
          widget = new MainAreaWidget({ content: frame });
          widget.id = `aiinfra-dashboard-${name}`;
          widget.title.label = `Dask: ${name}`;
          widget.title.icon = aiinfraIcon;
          widget.title.closable = true;
          widget.addClass('aiinfra-dashboard-tab');
          dashboards.set(name, widget);
          widget.disposed.connect(() => dashboards.delete(name));
          app.shell.add(widget, 'main');
        }
        app.shell.activateById(widget.id);
      }
    });

    commands.addCommand(CommandIDs.insertConnect, {
      label: args =>
        args.name ? `aiinfra: Insert Client for ${named(args)}` : 'aiinfra: Insert Client Code…',
      execute: async args => {
        const name = named(args) || (await askName('Connect to which cluster?'));
        const current = notebooks?.currentWidget;
        if (!name) {
          return;
        }
        if (!current) {
          await showErrorMessage('No notebook open', 'Open a notebook to insert the client code into.');
          return;
        }
        NotebookActions.insertBelow(current.content);
        current.content.activeCell?.model.sharedModel.setSource(connectCode(name));
        app.shell.activateById(current.id);
      }
    });

    commands.addCommand(CommandIDs.runPipeline, {
      label: 'aiinfra: Run Pipeline',
      caption: 'Run a pipeline.yaml with aiinfra',
      execute: async args => {
        let path = String(args.path ?? '') || selectedYaml();
        if (!path) {
          const answer = await InputDialog.getText({
            title: 'Run which pipeline?',
            placeholder: 'folder/pipeline.yaml (relative to the Jupyter root)'
          });
          if (!answer.button.accept || !answer.value) {
            return;
          }
          path = answer.value;
        }
        await reportFailure(`Cannot run ${path}`, () =>
          model.request(['pipelines', 'runs'], 'POST', { pipeline: path })
        );
        app.shell.activateById(panel.id);
        await model.poll.refresh();
      }
    });

    function selectedYaml(): string {
      const browser = browserFactory?.tracker.currentWidget;
      const item = browser?.selectedItems().next();
      const path = item && !item.done ? item.value.path : '';
      return /\.ya?ml$/.test(path) ? path : '';
    }

    async function askName(title: string): Promise<string> {
      const names = (model.clusters.data ?? []).map(c => c.name);
      if (names.length === 0) {
        await showErrorMessage('No clusters', 'No cluster is registered; start one first.');
        return '';
      }
      const answer = await InputDialog.getItem({ title, items: names });
      return answer.button.accept && answer.value ? answer.value : '';
    }

    app.contextMenu.addItem({
      command: CommandIDs.runPipeline,
      selector: '.jp-DirListing-item[data-file-type="yaml"]',
      rank: 20
    });

    if (palette) {
      for (const command of [
        CommandIDs.openPanel,
        CommandIDs.refresh,
        CommandIDs.startCluster,
        CommandIDs.scaleCluster,
        CommandIDs.stopCluster,
        CommandIDs.openDashboard,
        CommandIDs.insertConnect,
        CommandIDs.runPipeline
      ]) {
        palette.addItem({ command, category: 'aiinfra' });
      }
    }
  }
};

export default plugin;
