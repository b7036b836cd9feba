/**
 * The one chart command, `aiinfra:open-chart`: this machine's GPU and host
 * charts (as jupyterlab-nvdashboard has them, fed by the server's one sampler)
 * or a cluster's hosts and GPUs (`{chart: 'hosts', cluster: NAME}`, fed by its
 * workers' sampler through our server). Each is a dockable panel, restored
 * after a reload by JupyterLab's layout restorer.
 */

import { ILayoutRestorer, JupyterFrontEnd } from '@jupyterlab/application';
import { InputDialog, MainAreaWidget, WidgetTracker } from '@jupyterlab/apputils';
import { ITranslator } from '@jupyterlab/translation';
import { LabIcon } from '@jupyterlab/ui-components';
import { CommandRegistry } from '@lumino/commands';

import { chartInfo, ChartKind, chartLabel, CHARTS, HOSTS_CHART } from '../charts';
import { ChartPanel } from '../chartview';
import { ClusterChartsPanel } from '../clustercharts';
import { bundle } from '../i18n';
import { PanelModel } from '../model';
import { clusterName } from './common';

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

  /** Either kind of chart panel: this machine's, or a cluster's hosts. */
  export type AnyChartPanel = ChartPanel | ClusterChartsPanel;

  /** What reopens a panel after a reload (the restorer's `args`), and its name there. */
  export function argsOf(panel: AnyChartPanel): { chart: string; cluster?: string } {
    return panel instanceof ClusterChartsPanel ? { chart: HOSTS_CHART, cluster: panel.cluster } : { chart: panel.kind };
  }

  export function add(options: IOptions): WidgetTracker<MainAreaWidget> {
    const { commands, shell, model, ids, translator } = options;
    const trans = bundle(translator);
    const tracker = new WidgetTracker<MainAreaWidget>({ namespace: 'aiinfra-chart' });

    /** Show `panel` (made by `make` when none is open yet), docked below the current one. */
    const show = (find: (w: MainAreaWidget) => boolean, make: () => MainAreaWidget) => {
      let panel = tracker.find(find);
      if (!panel) {
        panel = make();
        void tracker.add(panel);
        shell.add(panel, 'main', { mode: 'split-bottom' });
      }
      shell.activateById(panel.id);
      return panel;
    };

    /** No chart named (the palette): this machine or one of the clusters, picked. */
    const pick = async (): Promise<{ chart: string; cluster?: string } | null> => {
      const machine = trans.__('this machine');
      const clusters = (model.clusters.data ?? []).map(c => c.name);
      const answer = await InputDialog.getItem({ title: trans.__('Charts of'), items: [machine, ...clusters] });
      if (!answer.button.accept || !answer.value) {
        return null;
      }
      return answer.value === machine ? { chart: 'machine' } : { chart: HOSTS_CHART, cluster: answer.value };
    };

    commands.addCommand(ids.openChart, {
      label: args => {
        if (args.cluster) {
          return trans.__('aiinfra: Charts of %1', String(args.cluster));
        }
        const info = args.chart ? chartInfo(String(args.chart)) : undefined;
        if (args.chart === HOSTS_CHART) {
          return trans.__('aiinfra: %1', chartLabel(HOSTS_CHART, trans));
        }
        return info ? trans.__('aiinfra: %1', chartLabel(info.kind, trans)) : trans.__('aiinfra: Open Chart');
      },
      caption: trans.__("This machine's GPU and host charts, or every host and GPU of a cluster"),
      execute: async args => {
        let chart = String(args.chart ?? '');
        let cluster = String(args.cluster ?? '');
        if (!chart && !cluster) {
          const picked = await pick();
          if (!picked) {
            return;
          }
          chart = picked.chart;
          cluster = picked.cluster ?? '';
        }
        if (chart === HOSTS_CHART || cluster) {
          const name = await clusterName(model, { name: cluster }, trans.__('Charts of which cluster?'), trans);
          if (!name) {
            return;
          }
          return show(
            w => w instanceof ClusterChartsPanel && w.cluster === name,
            () => new ClusterChartsPanel({ model, name, icon: options.icon, translator })
          );
        }
        if (!chartInfo(chart)) {
          console.warn(`aiinfra: no chart ${chart}; known: ${[...CHARTS.map(c => c.kind), HOSTS_CHART].join(', ')}`);
          return;
        }
        const kind = chart as ChartKind;
        const panel = show(
          w => w instanceof ChartPanel && w.kind === kind,
          () => {
            if (!model.pushing) {
              void model.refreshNow(['metrics']);
            }
            return new ChartPanel({ model, kind, icon: options.icon, translator });
          }
        );
        return panel;
      }
    });

    void options.restorer?.restore(tracker, {
      command: ids.openChart,
      args: panel => argsOf(panel as AnyChartPanel),
      name: panel => {
        const args = argsOf(panel as AnyChartPanel);
        return args.cluster ? `${HOSTS_CHART}:${args.cluster}` : args.chart;
      }
    });
    return tracker;
  }
}
