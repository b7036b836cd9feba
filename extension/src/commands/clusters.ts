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
    const label = (args: { name?: unknown }, one: string, any: string) =>
      args.name ? `aiinfra: ${one} ${String(args.name)}` : `aiinfra: ${any}`;

    commands.addCommand(ids.startCluster, {
      label: 'aiinfra: Start Dask Cluster…',
      execute: async () => {
        const backends = await model.loadBackends();
        // The form stays open until the server started the cluster; a rejected
        // value is shown under its field, with everything typed kept.
        const started = await showFormDialog({
          title: 'Start a Dask cluster',
          body: new StartClusterForm({
            backends,
            defaultBackend: options.defaultBackend(),
            error: model.backends.error
          }),
          accept: 'Start',
          submit: async value => {
            const { body, error, field } = formToBody(backends, value);
            if (error || !body) {
              throw new FormError(error ?? 'invalid form', field ?? null);
            }
            const name = String(body.name ?? 'new cluster');
            model.setBusy(name, 'starting');
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
      label: args => label(args, 'Scale', 'Scale Cluster…'),
      execute: async args => {
        const name = await clusterName(model, args, 'Scale which cluster?');
        if (!name) {
          return;
        }
        await showFormDialog({
          title: `Workers for ${name}`,
          body: new ScaleForm(model.cluster(name)?.workers ?? 2),
          accept: 'Scale',
          submit: async raw => {
            const text = raw.trim();
            if (!/^\d+$/.test(text)) {
              throw new FormError(`workers: got ${JSON.stringify(text)}; allowed: an integer >= 0`, 'workers');
            }
            await Private.change(model, name, 'scaling', { workers: Number(text) });
          }
        });
      }
    });

    commands.addCommand(ids.adaptCluster, {
      label: args => label(args, 'Adapt', 'Adapt Cluster…'),
      caption: 'Let Dask add and remove workers with the load, between a minimum and a maximum',
      execute: async args => {
        const name = await clusterName(model, args, 'Adapt which cluster?');
        if (!name) {
          return;
        }
        const cluster = model.cluster(name);
        await showFormDialog({
          title: `Adapt ${name}`,
          body: new AdaptForm(adaptBounds(cluster?.adapt ?? null, cluster?.workers ?? 1)),
          accept: 'Adapt',
          submit: async value => {
            const { body, error, field } = adaptBody(value.minimum, value.maximum);
            if (error || !body) {
              throw new FormError(error ?? 'invalid bounds', field ?? 'adapt');
            }
            await Private.change(model, name, 'adapting', body);
          }
        });
      }
    });

    commands.addCommand(ids.stopCluster, {
      label: args => label(args, 'Stop', 'Stop Cluster…'),
      execute: async args => {
        const name = await clusterName(model, args, 'Stop which cluster?');
        if (!name) {
          return;
        }
        // Stopping loses the workers' memory and running tasks: ask first.
        const answer = await showDialog({
          title: `Stop ${name}?`,
          body: 'Its scheduler and workers are closed; data held in their memory and running tasks are lost.',
          buttons: [Dialog.cancelButton(), Dialog.warnButton({ label: 'Stop' })]
        });
        if (!answer.button.accept) {
          return;
        }
        model.setBusy(name, 'stopping');
        await reportFailure(`Cannot stop ${name}`, () => model.request(['clusters', name], 'DELETE'));
        model.setBusy(name, null);
        // Its dashboard panels stay and say that it stopped (DashboardPane).
        await model.refreshNow();
      }
    });

    commands.addCommand(ids.insertConnect, {
      label: args => label(args, 'Insert Client for', 'Insert Client Code…'),
      execute: async args => {
        const name = await clusterName(model, args, 'Connect to which cluster?');
        if (!name) {
          return;
        }
        const current = options.notebooks?.currentWidget;
        if (!current) {
          await showErrorMessage('No notebook open', 'Open a notebook to insert the client code into.');
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
