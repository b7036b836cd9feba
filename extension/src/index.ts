/**
 * aiinfra for JupyterLab: a sidebar with this machine's devices, every
 * registered Dask cluster and recent pipeline runs, dockable Dask dashboard
 * plots and GPU/host charts, plus `aiinfra:*` commands. Data is pushed by the
 * aiinfra server extension over one WebSocket (`aiinfra/api/events`); its REST
 * API is polled only while that socket is down.
 *
 * `activate` only wires things together: the model (model.ts), the panel
 * (panel.tsx) and one group of commands per file (commands/).
 */

import { ILayoutRestorer, JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { ICommandPalette } from '@jupyterlab/apputils';
import { IDocumentManager } from '@jupyterlab/docmanager';
import { IFileBrowserFactory } from '@jupyterlab/filebrowser';
import { INotebookTracker } from '@jupyterlab/notebook';
import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';
import { ISettingRegistry } from '@jupyterlab/settingregistry';
import { ITranslator, nullTranslator, TranslationBundle } from '@jupyterlab/translation';
import { LabIcon } from '@jupyterlab/ui-components';

import { IRequester } from './api';
import { ChartCommands } from './commands/charts';
import { ClusterCommands } from './commands/clusters';
import { DashboardCommands } from './commands/dashboards';
import { PanelCommands } from './commands/panel';
import { PipelineCommands } from './commands/pipelines';
import { ISocketLike } from './events';
import { PanelModel } from './model';
import { AiinfraPanel } from './panel';
import { RunNotifications } from './pipelines/notify';
import { AddToPipelineButton } from './pipelines/toolbar';
import { ScheduleCommands, ScheduleNotebookButton } from './pipelines/schedules';

/** The ids of the commands this extension adds. */
export namespace CommandIDs {
  export const openPanel = 'aiinfra:open-panel';
  export const refresh = 'aiinfra:refresh';
  export const startCluster = 'aiinfra:start-cluster';
  export const scaleCluster = 'aiinfra:scale-cluster';
  export const adaptCluster = 'aiinfra:adapt-cluster';
  export const stopCluster = 'aiinfra:stop-cluster';
  export const openDashboard = 'aiinfra:open-dashboard';
  export const openPane = 'aiinfra:open-dashboard-plot';
  export const openChart = 'aiinfra:open-chart';
  export const insertConnect = 'aiinfra:insert-connect';
  export const runPipeline = 'aiinfra:run-pipeline';
  export const pickPipeline = 'aiinfra:pick-pipeline';
  export const openRuns = 'aiinfra:open-runs';
  export const cancelRun = 'aiinfra:cancel-run';
  export const rerunFailed = 'aiinfra:rerun-failed';
  export const openExecuted = 'aiinfra:open-executed';
  export const addToPipeline = 'aiinfra:add-to-pipeline';
}

const PLUGIN_ID = 'aiinfra:plugin';

export const aiinfraIcon = new LabIcon({
  name: 'aiinfra:icon',
  svgstr: `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24">
<g class="jp-icon3" fill="#616161">
<rect x="3" y="3" width="7" height="7" rx="1.5"/><rect x="14" y="3" width="7" height="7" rx="1.5"/>
<rect x="3" y="14" width="7" height="7" rx="1.5"/><rect x="14" y="14" width="7" height="7" rx="1.5"/>
<rect x="9.5" y="6" width="5" height="1.2"/><rect x="9.5" y="17" width="5" height="1.2"/>
<rect x="6" y="9.5" width="1.2" height="5"/><rect x="17" y="9.5" width="1.2" height="5"/>
</g></svg>`
});

const plugin: JupyterFrontEndPlugin<void> = {
  id: PLUGIN_ID,
  description: 'Devices, Dask clusters and pipeline runs in the JupyterLab sidebar.',
  autoStart: true,
  optional: [
    ICommandPalette,
    ILayoutRestorer,
    ISettingRegistry,
    INotebookTracker,
    IFileBrowserFactory,
    IDocumentManager,
    ITranslator
  ],
  activate: (
    app: JupyterFrontEnd,
    palette: ICommandPalette | null,
    restorer: ILayoutRestorer | null,
    settingRegistry: ISettingRegistry | null,
    notebooks: INotebookTracker | null,
    browserFactory: IFileBrowserFactory | null,
    docManager: IDocumentManager | null,
    translatorOrNull: ITranslator | null
  ) => {
    const { commands, shell } = app;
    // Every user-facing string goes through the lab's translator (domain 'aiinfra'):
    // each widget and command group gets it in its options and loads its bundle.
    const translator = translatorOrNull ?? nullTranslator;
    const trans = translator.load('aiinfra');
    const serverSettings = ServerConnection.makeSettings();
    const model = new PanelModel({
      requester: Private.requester(serverSettings, trans),
      interval: 5000,
      connect: Private.eventSocket(serverSettings)
    });
    model.start();
    const panel = new AiinfraPanel({ model, commands, commandIDs: CommandIDs, translator });
    panel.id = 'aiinfra-sidebar';
    panel.title.icon = aiinfraIcon;
    panel.title.caption = trans.__('aiinfra: devices, clusters, pipelines');
    shell.add(panel, 'left', { rank: 600 });
    restorer?.add(panel, 'aiinfra-sidebar');

    const settings = { defaultBackend: 'auto' };
    if (settingRegistry) {
      Private.followSettings(settingRegistry, model, settings);
    }

    PanelCommands.add({ commands, shell, panel, model, ids: CommandIDs, translator });
    ClusterCommands.add({
      commands,
      shell,
      model,
      ids: CommandIDs,
      notebooks,
      defaultBackend: () => settings.defaultBackend,
      translator
    });
    DashboardCommands.add({
      commands,
      shell,
      model,
      ids: CommandIDs,
      baseUrl: serverSettings.baseUrl,
      restorer,
      icon: aiinfraIcon,
      translator
    });
    ChartCommands.add({ commands, shell, model, ids: CommandIDs, restorer, icon: aiinfraIcon, translator });
    PipelineCommands.add({
      commands,
      shell,
      panel,
      model,
      ids: CommandIDs,
      browserFactory,
      docManager,
      notebooks,
      contents: app.serviceManager.contents,
      icon: aiinfraIcon,
      translator
    });
    ScheduleCommands.add({
      commands,
      shell,
      requester: model.requester,
      clusters: () => model.request<{ clusters: { name: string }[] }>(['clusters']).then(d => d.clusters.map(c => c.name)),
      notebooks,
      translator,
      icon: aiinfraIcon
    });
    app.docRegistry.addWidgetExtension('Notebook', new ScheduleNotebookButton(commands, aiinfraIcon, translator));
    palette?.addItem({ command: ScheduleCommands.open, category: 'aiinfra' });
    palette?.addItem({ command: ScheduleCommands.schedule, category: 'aiinfra' });
    RunNotifications.add({ pushed: model.pushed, commands, openRuns: CommandIDs.openRuns, translator });
    app.docRegistry.addWidgetExtension(
      'Notebook',
      new AddToPipelineButton(commands, CommandIDs.addToPipeline, aiinfraIcon, translator)
    );
    app.contextMenu.addItem({ command: CommandIDs.addToPipeline, selector: '.jp-Notebook', rank: 90 });

    app.contextMenu.addItem({
      command: CommandIDs.runPipeline,
      selector: '.jp-DirListing-item[data-file-type="yaml"]',
      rank: 20
    });
    for (const command of Object.values(CommandIDs)) {
      palette?.addItem({ command, category: 'aiinfra' });
    }
  }
};

export default plugin;

namespace Private {
  /** Requests through ServerConnection: base URL, token and XSRF cookie are handled there. */
  export function requester(settings: ServerConnection.ISettings, trans: TranslationBundle): IRequester {
    return {
      baseUrl: settings.baseUrl,
      fetcher: (url, init) => ServerConnection.makeRequest(url, init, settings),
      trans
    };
  }

  /**
   * Open the events socket as JupyterLab opens its own (kernels, terminals):
   * below the settings' wsUrl, with the token appended when token auth is in use;
   * otherwise the browser sends the login cookie with the upgrade request.
   */
  export function eventSocket(settings: ServerConnection.ISettings): () => ISocketLike {
    return () => {
      let url = URLExt.join(settings.wsUrl, 'aiinfra', 'api', 'events');
      if (settings.appendToken && settings.token !== '') {
        url += `?token=${encodeURIComponent(settings.token)}`;
      }
      return new settings.WebSocket(url);
    };
  }

  /** Apply the plugin's settings now and whenever they change. */
  export function followSettings(
    registry: ISettingRegistry,
    model: PanelModel,
    target: { defaultBackend: string }
  ): void {
    const apply = (settings: ISettingRegistry.ISettings) => {
      const seconds = Number(settings.get('refreshInterval').composite) || 5;
      model.setInterval(Math.max(1, seconds) * 1000);
      target.defaultBackend = String(settings.get('defaultBackend').composite || 'auto');
    };
    registry
      .load(PLUGIN_ID)
      .then(settings => {
        apply(settings);
        settings.changed.connect(apply);
      })
      .catch(reason => console.warn('aiinfra: settings not loaded', reason));
  }
}
