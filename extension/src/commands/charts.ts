/**
 * Commands of the GPU and host charts (as jupyterlab-nvdashboard has them):
 * each opens a dockable panel fed by the server's one sampler, restored
 * after a reload by JupyterLab's layout restorer.
 */

import { ILayoutRestorer, JupyterFrontEnd } from '@jupyterlab/application';
import { WidgetTracker } from '@jupyterlab/apputils';
import { ITranslator } from '@jupyterlab/translation';
import { LabIcon } from '@jupyterlab/ui-components';
import { CommandRegistry } from '@lumino/commands';

import { chartInfo, ChartKind, chartLabel, CHARTS } from '../charts';
import { ChartPanel } from '../chartview';
import { bundle } from '../i18n';
import { PanelModel } from '../model';

export namespace ChartCommands {
  export interface ICommandIDs {
    openChart: string;
  }

  export interface IOptions {
    commands: CommandRegistry;
    shell: JupyterFrontEnd.IShell;
    model: PanelModel;
    ids: ICommandIDs;
    restorer: ILayoutRestorer | null;
    icon?: LabIcon;
    /** The lab's translator (strings in the 'aiinfra' domain); none: untranslated. */
    translator?: ITranslator;
  }

  export function add(options: IOptions): WidgetTracker<ChartPanel> {
    const { commands, shell, model, ids, translator } = options;
    const trans = bundle(translator);
    const tracker = new WidgetTracker<ChartPanel>({ namespace: 'aiinfra-chart' });

    commands.addCommand(ids.openChart, {
      label: args => {
        const info = args.chart ? chartInfo(String(args.chart)) : undefined;
        return info ? trans.__('aiinfra: %1', chartLabel(info.kind, trans)) : trans.__('aiinfra: Open Chart');
      },
      caption: trans.__("GPU and host charts from the server's sampler"),
      execute: args => {
        const kind = String(args.chart ?? '') as ChartKind;
        if (!chartInfo(kind)) {
          console.warn(`aiinfra: no chart ${kind}; known: ${CHARTS.map(c => c.kind).join(', ')}`);
          return;
        }
        let panel = tracker.find(w => w.kind === kind);
        if (!panel) {
          panel = new ChartPanel({ model, kind, icon: options.icon, translator });
          void tracker.add(panel);
          shell.add(panel, 'main', { mode: 'split-bottom' });
          if (!model.pushing) {
            void model.refreshNow(['metrics']);
          }
        }
        shell.activateById(panel.id);
        return panel;
      }
    });

    void options.restorer?.restore(tracker, {
      command: ids.openChart,
      args: panel => ({ chart: panel.kind }),
      name: panel => panel.kind
    });
    return tracker;
  }
}
