/**
 * Commands of Dask dashboards: the whole page or any individual plot of a
 * cluster's dashboard as its own dockable panel (as dask-labextension does),
 * tracked so that JupyterLab's layout restorer brings the panels back, where
 * they were, after a reload.
 */

import { ILayoutRestorer, JupyterFrontEnd } from '@jupyterlab/application';
import { WidgetTracker } from '@jupyterlab/apputils';
import { ITranslator } from '@jupyterlab/translation';
import { LabIcon } from '@jupyterlab/ui-components';
import { CommandRegistry } from '@lumino/commands';

import { DashboardPane } from '../dashboard';
import { bundle } from '../i18n';
import { PanelModel } from '../model';
import { clusterName } from './common';

export namespace DashboardCommands {
  export interface ICommandIDs {
    openDashboard: string;
    openPane: string;
  }

  export interface IOptions {
    commands: CommandRegistry;
    shell: JupyterFrontEnd.IShell;
    model: PanelModel;
    ids: ICommandIDs;
    /** The server's base URL: dashboards are proxied below it. */
    baseUrl: string;
    restorer: ILayoutRestorer | null;
    icon?: LabIcon;
    /** The lab's translator (strings in the 'aiinfra' domain); none: untranslated. */
    translator?: ITranslator;
  }

  export function add(options: IOptions): WidgetTracker<DashboardPane> {
    const { commands, shell, model, ids, translator } = options;
    const trans = bundle(translator);
    const tracker = new WidgetTracker<DashboardPane>({ namespace: 'aiinfra-dashboard' });

    commands.addCommand(ids.openPane, {
      label: args => (args.label ? trans.__('Dask %1', String(args.label)) : trans.__('aiinfra: Open Dashboard Plot')),
      caption: trans.__('Open one plot of the Dask dashboard as its own panel'),
      execute: async args => {
        const name = await clusterName(model, args, trans.__('Dashboard of which cluster?'), trans);
        const plot = String(args.plot ?? 'status') || 'status';
        if (!name) {
          return;
        }
        const id = DashboardPane.id(name, plot);
        let pane = tracker.find(w => w.id === id);
        if (!pane) {
          pane = new DashboardPane({
            model,
            baseUrl: options.baseUrl,
            cluster: name,
            plot,
            label: String(args.label ?? (plot === 'status' ? trans.__('Dashboard') : plot)),
            icon: options.icon,
            translator
          });
          void tracker.add(pane);
          // Individual plots open beside what is there, as dask-labextension does.
          shell.add(pane, 'main', plot === 'status' ? undefined : { mode: 'split-right' });
        }
        shell.activateById(pane.id);
        return pane;
      }
    });

    commands.addCommand(ids.openDashboard, {
      label: args =>
        args.name ? trans.__('aiinfra: Dashboard of %1', String(args.name)) : trans.__('aiinfra: Open Dask Dashboard…'),
      execute: async args => {
        const name = await clusterName(model, args, trans.__('Dashboard of which cluster?'), trans);
        if (name) {
          return commands.execute(ids.openPane, { name, plot: 'status', label: trans.__('Dashboard') });
        }
      }
    });

    void options.restorer?.restore(tracker, {
      command: ids.openPane,
      args: pane => ({ name: pane.cluster, plot: pane.plot, label: pane.label }),
      name: pane => `${pane.cluster}:${pane.plot}`
    });
    return tracker;
  }
}
