/**
 * Commands of Dask clusters: start (dialog made from the backend
 * declaration), scale, adapt, stop (confirmed), connect code. Dashboard
 * panels are in dashboards.ts.
 * Each runs from the sidebar's buttons with `{name}` or from the palette,
 * where it asks which cluster.
 */

import { JupyterFrontEnd } from '@jupyterlab/application';
import { Dialog, showDialog, showErrorMessage } from '@jupyterlab/apputils';
import { INotebookTracker, NotebookActions } from '@jupyterlab/notebook';
import { ITranslator } from '@jupyterlab/translation';
import { CommandRegistry } from '@lumino/commands';

import { adaptBody, adaptBounds, formToBody } from '../backends';
import { AdaptForm, ScaleForm, StartClusterForm } from '../dialog';
import { FormError, showFormDialog } from '../formdialog';
import { bundle } from '../i18n';
import { connectCode, ICluster, PanelModel } from '../model';
import { clusterName, reportFailure } from './common';

export namespace ClusterCommands {
  export interface ICommandIDs {
    startCluster: string;
    scaleCluster: string;
    adaptCluster: string;
    stopCluster: string;
    insertConnect: string;
  }

  export interface IOptions {
    commands: CommandRegistry;
    shell: JupyterFrontEnd.IShell;
    model: PanelModel;
    ids: ICommandIDs;
    /** Where Connect inserts the client code, when notebooks are there. */
    notebooks: INotebookTracker | null;
    /** The backend the start dialog preselects (the setting `defaultBackend`). */
    defaultBackend: () => string;
    /** The lab's translator (strings in the 'aiinfra' domain); none: untranslated. */
    translator?: ITranslator;
  }

  export function add(options: IOptions): void {
    const { commands, shell, model, ids } = options;
    const trans = bundle(options.translator);

    commands.addCommand(ids.startCluster, {
      label: trans.__('aiinfra: Start Dask Cluster…'),
      execute: async () => {
        const backends = await model.loadBackends();
        // The form stays open until the server started the cluster; a rejected
        // value is shown under its field, with everything typed kept.
        const started = await showFormDialog({
          title: trans.__('Start a Dask cluster'),
          body: new StartClusterForm({
            backends,
            defaultBackend: options.defaultBackend(),
            error: model.backends.error,
            auto: model.autoBackend,
            trans
          }),
          cancel: trans.__('Cancel'),
          accept: trans.__('Start'),
          submit: async value => {
            const { body, error, field } = formToBody(backends, value, trans);
            if (error || !body) {
              throw new FormError(error ?? trans.__('invalid form'), field ?? null);
            }
            const name = String(body.name ?? trans.__('new cluster'));
            model.setBusy(name, trans.__('starting'));
            try {
              await model.request<ICluster>(['clusters'], 'POST', body);
            } finally {
              model.setBusy(name, null);
            }
          }
        });
        if (started) {
          await model.refreshNow();
        }
      }
    });

    commands.addCommand(ids.scaleCluster, {
      label: args => (args.name ? trans.__('aiinfra: Scale %1', String(args.name)) : trans.__('aiinfra: Scale Cluster…')),
      execute: async args => {
        const name = await clusterName(model, args, trans.__('Scale which cluster?'), trans);
        if (!name) {
          return;
        }
        await showFormDialog({
          title: trans.__('Workers for %1', name),
          body: new ScaleForm(model.cluster(name)?.workers ?? 2, trans),
          cancel: trans.__('Cancel'),
          accept: trans.__('Scale'),
          submit: async raw => {
            const text = raw.trim();
            if (!/^\d+$/.test(text)) {
              throw new FormError(
                trans.__('workers: got %1; allowed: an integer >= 0', JSON.stringify(text)),
                'workers'
              );
            }
            await Private.change(model, name, trans.__('scaling'), { workers: Number(text) });
          }
        });
      }
    });

    commands.addCommand(ids.adaptCluster, {
      label: args => (args.name ? trans.__('aiinfra: Adapt %1', String(args.name)) : trans.__('aiinfra: Adapt Cluster…')),
      caption: trans.__('Let Dask add and remove workers with the load, between a minimum and a maximum'),
      execute: async args => {
        const name = await clusterName(model, args, trans.__('Adapt which cluster?'), trans);
        if (!name) {
          return;
        }
        const cluster = model.cluster(name);
        await showFormDialog({
          title: trans.__('Adapt %1', name),
          body: new AdaptForm({ ...adaptBounds(cluster?.adapt ?? null, cluster?.workers ?? 1), trans }),
          cancel: trans.__('Cancel'),
          accept: trans.__('Adapt'),
          submit: async value => {
            const { body, error, field } = adaptBody(value.minimum, value.maximum, trans);
            if (error || !body) {
              throw new FormError(error ?? trans.__('invalid bounds'), field ?? 'adapt');
            }
            await Private.change(model, name, trans.__('adapting'), body);
          }
        });
      }
    });

    commands.addCommand(ids.stopCluster, {
      label: args => (args.name ? trans.__('aiinfra: Stop %1', String(args.name)) : trans.__('aiinfra: Stop Cluster…')),
      execute: async args => {
        const name = await clusterName(model, args, trans.__('Stop which cluster?'), trans);
        if (!name) {
          return;
        }
        // Stopping loses the workers' memory and running tasks: ask first.
        const answer = await showDialog({
          title: trans.__('Stop %1?', name),
          body: trans.__('Its scheduler and workers are closed; data held in their memory and running tasks are lost.'),
          buttons: [Dialog.cancelButton({ label: trans.__('Cancel') }), Dialog.warnButton({ label: trans.__('Stop') })]
        });
        if (!answer.button.accept) {
          return;
        }
        model.setBusy(name, trans.__('stopping'));
        await reportFailure(trans.__('Cannot stop %1', name), () => model.request(['clusters', name], 'DELETE'));
        model.setBusy(name, null);
        // Its dashboard panels stay and say that it stopped (DashboardPane).
        await model.refreshNow();
      }
    });

    commands.addCommand(ids.insertConnect, {
      label: args => (args.name ? trans.__('aiinfra: Insert Client for %1', String(args.name)) : trans.__('aiinfra: Insert Client Code…')),
      execute: async args => {
        const name = await clusterName(model, args, trans.__('Connect to which cluster?'), trans);
        if (!name) {
          return;
        }
        const current = options.notebooks?.currentWidget;
        if (!current) {
          await showErrorMessage(
            trans.__('No notebook open'),
            trans.__('Open a notebook to insert the client code into.')
          );
          return;
        }
        NotebookActions.insertBelow(current.content);
        current.content.activeCell?.model.sharedModel.setSource(connectCode(name));
        shell.activateById(current.id);
      }
    });
  }
}

namespace Private {
  /**
   * PATCH a cluster (scale or adapt), showing what is being done on its card
   * meanwhile; a failure is thrown for the form to show beside its field.
   */
  export async function change(model: PanelModel, name: string, what: string, body: object): Promise<void> {
    model.setBusy(name, what);
    try {
      await model.request(['clusters', name], 'PATCH', body);
    } finally {
      model.setBusy(name, null);
    }
    await model.refreshNow();
  }
}
