/**
 * Commands of pipelines: run a pipeline.yaml from a dialog made from its spec
 * (palette, sidebar, file browser context menu or a path picker), the run view
 * in the main area (cancel, re-run failed steps, executed notebooks read-only),
 * and "Add to pipeline" for the notebook in front.
 */

import { JupyterFrontEnd } from '@jupyterlab/application';
import { Dialog, InputDialog, MainAreaWidget, showDialog, showErrorMessage } from '@jupyterlab/apputils';
import { IDocumentManager } from '@jupyterlab/docmanager';
import { FileDialog, IFileBrowserFactory } from '@jupyterlab/filebrowser';
import { INotebookTracker, NotebookPanel } from '@jupyterlab/notebook';
import { Contents } from '@jupyterlab/services';
import { LabIcon } from '@jupyterlab/ui-components';
import { CommandRegistry } from '@lumino/commands';
import { Widget } from '@lumino/widgets';

import { ICluster, PanelModel } from '../model';
import { parseParamLines, PromoteForm, RunPipelineForm } from '../pipelines/dialogs';
import { openReadOnly } from '../pipelines/readonly';
import { RunsModel } from '../pipelines/runs';
import { RunsView } from '../pipelines/runview';
import { fetchSpec, formToRunBody, ISpec } from '../pipelines/spec';
import { FormError, showFormDialog } from '../formdialog';
import { reportFailure } from './common';

export namespace PipelineCommands {
  export interface ICommandIDs {
    runPipeline: string;
    pickPipeline: string;
    openRuns: string;
    cancelRun: string;
    rerunFailed: string;
    openExecuted: string;
    addToPipeline: string;
  }

  export interface IOptions {
    commands: CommandRegistry;
    shell: JupyterFrontEnd.IShell;
    panel: Widget;
    model: PanelModel;
    ids: ICommandIDs;
    /** Where a selected pipeline.yaml is taken from, when the file browser is there. */
    browserFactory: IFileBrowserFactory | null;
    /** Opens executed notebooks (read-only) and backs the path picker. */
    docManager: IDocumentManager | null;
    /** The notebook "Add to pipeline" promotes. */
    notebooks: INotebookTracker | null;
    /** Reads an executed notebook's JSON (the failing cell's error in the run view). */
    contents: Contents.IManager | null;
    icon?: LabIcon;
  }

  export function add(options: IOptions): void {
    const { commands, shell, model, ids } = options;
    let view: MainAreaWidget<RunsView> | null = null;

    /** The run view: one main-area tab, created on first use. */
    const runsView = (): MainAreaWidget<RunsView> => {
      if (!view || view.isDisposed) {
        const runs = new RunsModel({
          requester: model.requester,
          readNotebook: options.contents
            ? async path => (await options.contents!.get(path, { content: true, type: 'notebook' })).content
            : undefined
        });
        const content = new RunsView({
          model: runs,
          commands,
          commandIDs: { openExecuted: ids.openExecuted, cancelRun: ids.cancelRun, rerunFailed: ids.rerunFailed }
        });
        view = new MainAreaWidget({ content });
        view.id = 'aiinfra-runs';
        view.title.label = 'Pipeline runs';
        view.title.closable = true;
        if (options.icon) {
          view.title.icon = options.icon;
        }
        view.addClass('aiinfra-runs-tab');
      }
      if (!view.isAttached) {
        shell.add(view, 'main');
      }
      shell.activateById(view.id);
      return view;
    };

    commands.addCommand(ids.runPipeline, {
      label: 'aiinfra: Run Pipeline…',
      caption: 'Run a pipeline.yaml with aiinfra: parameters, cluster, only, force',
      execute: async args => {
        const path =
          String(args.path ?? '') || Private.selectedYaml(options.browserFactory) || (await Private.pick(options));
        if (!path) {
          return;
        }
        let spec: ISpec;
        try {
          spec = await fetchSpec(model.requester, path);
        } catch (error) {
          await showErrorMessage(`Cannot run ${path}`, (error as Error).message);
          return;
        }
        const clusters = await model
          .request<{ clusters: ICluster[] }>(['clusters'])
          .then(data => data.clusters.map(c => c.name))
          .catch(() => [] as string[]);
        await showFormDialog({
          title: `Run ${spec.name}`,
          body: new RunPipelineForm({ spec, clusters }),
          accept: 'Run',
          submit: async value => {
            const { body, error, field } = formToRunBody(spec, value);
            if (!body) {
              throw new FormError(error ?? 'invalid form', field ?? null);
            }
            await runsView().content.model.start({ ...body });
          }
        });
        void model.poll.refresh();
      }
    });

    commands.addCommand(ids.pickPipeline, {
      label: 'aiinfra: Run Pipeline from File…',
      caption: 'Pick a pipeline.yaml in a file dialog and run it',
      execute: async () => {
        const path = await Private.pick(options);
        if (path) {
          await commands.execute(ids.runPipeline, { path });
        }
      }
    });

    commands.addCommand(ids.openRuns, {
      label: 'aiinfra: Pipeline Runs',
      caption: 'Runs grouped by pipeline, with their DAG and live step states',
      execute: args => {
        const widget = runsView();
        if (args.run_id) {
          widget.content.model.select(String(args.run_id));
        }
      }
    });

    commands.addCommand(ids.cancelRun, {
      label: 'aiinfra: Cancel Run',
      execute: async args => {
        const runId = String(args.run_id ?? '');
        if (!runId) {
          return;
        }
        const answer = await showDialog({
          title: `Cancel run ${runId}?`,
          body: 'Running steps are stopped (their kernels too); finished steps stay cached.',
          buttons: [Dialog.cancelButton({ label: 'Keep running' }), Dialog.warnButton({ label: 'Cancel run' })]
        });
        if (!answer.button.accept) {
          return;
        }
        await reportFailure(`Cannot cancel ${runId}`, () => runsView().content.model.cancel(runId));
      }
    });

    commands.addCommand(ids.rerunFailed, {
      label: 'aiinfra: Re-run Failed Steps',
      execute: async args => {
        const runs = runsView().content.model;
        const run = runs.runs.find(r => r.run_id === String(args.run_id ?? ''));
        if (!run) {
          return;
        }
        await reportFailure(`Cannot re-run ${run.run_id}`, () => runs.rerunFailed(run));
      }
    });

    commands.addCommand(ids.openExecuted, {
      label: 'aiinfra: Open Executed Notebook (read-only)',
      execute: async args => {
        const path = String(args.path ?? '');
        if (!path || !options.docManager) {
          return;
        }
        await reportFailure(`Cannot open ${path}`, () => openReadOnly(options.docManager!, path));
      }
    });

    commands.addCommand(ids.addToPipeline, {
      label: 'aiinfra: Add to Pipeline…',
      caption: 'Make this notebook a step of a pipeline.yaml (what %aiinfra promote does)',
      isEnabled: () => !!options.notebooks?.currentWidget,
      execute: async () => {
        const current = options.notebooks?.currentWidget;
        if (current) {
          await Private.promote(model, current);
        }
      }
    });
  }
}

namespace Private {
  /** The YAML file selected in the file browser, or ''. */
  export function selectedYaml(browserFactory: IFileBrowserFactory | null): string {
    const browser = browserFactory?.tracker.currentWidget;
    const item = browser?.selectedItems().next();
    const path = item && !item.done ? item.value.path : '';
    return /\.ya?ml$/.test(path) ? path : '';
  }

  /** A pipeline.yaml picked with the lab's file dialog (a typed path without a document manager). */
  export async function pick(options: PipelineCommands.IOptions): Promise<string> {
    if (options.docManager) {
      const result = await FileDialog.getOpenFiles({
        manager: options.docManager,
        title: 'Run which pipeline?',
        // Start where the file browser is: the pipeline is most likely there.
        defaultPath: options.browserFactory?.tracker.currentWidget?.model.path,
        filter: item => (item.type === 'directory' || /\.ya?ml$/.test(item.name) ? {} : null)
      });
      const chosen = result.button.accept ? (result.value ?? []) : [];
      return chosen.length ? chosen[0].path : '';
    }
    const answer = await InputDialog.getText({
      title: 'Run which pipeline?',
      placeholder: 'folder/pipeline.yaml (relative to the Jupyter root)'
    });
    return answer.button.accept && answer.value ? answer.value : '';
  }

  function folderOf(path: string): string {
    const i = path.lastIndexOf('/');
    return i < 0 ? '' : path.slice(0, i);
  }

  function stem(path: string): string {
    const name = path.split('/').pop() ?? path;
    const base = name.replace(/\.ipynb$/, '').replace(/[^A-Za-z0-9_-]+/g, '_').replace(/^_+|_+$/g, '');
    return /^[A-Za-z_]/.test(base) ? base : `step_${base || 'notebook'}`;
  }

  /** Steps already in `pipeline` (none when it does not exist yet or is invalid). */
  async function existingSteps(model: PanelModel, pipeline: string): Promise<string[]> {
    try {
      return (await fetchSpec(model.requester, pipeline)).steps.map(s => s.name);
    } catch {
      return [];
    }
  }

  /** "Add to pipeline": save, ask for after and params, promote, reload what promote changed. */
  export async function promote(model: PanelModel, panel: NotebookPanel): Promise<void> {
    const notebook = panel.context.path;
    const folder = folderOf(notebook);
    const pipeline = folder ? `${folder}/pipeline.yaml` : 'pipeline.yaml';
    const form = new PromoteForm({ pipeline, name: stem(notebook) });
    void existingSteps(model, pipeline).then(steps => form.setSteps(steps));
    const promoted: { done?: { step: string; pipeline: string; notes: string[] } } = {};
    // The form stays open until promote succeeded; a rejected value is shown under its field.
    await showFormDialog({
      title: `Add ${notebook.split('/').pop()} to a pipeline`,
      body: form,
      accept: 'Add',
      submit: async value => {
        const { params, error } = parseParamLines(value.params);
        if (!params) {
          throw new FormError(error ?? 'invalid params', 'params');
        }
        // Promote may tag a parameters cell in the file: save first so nothing typed is lost.
        if (panel.context.model.dirty && !panel.context.model.readOnly) {
          await panel.context.save();
        }
        promoted.done = await model.request(['pipelines', 'promote'], 'POST', {
          notebook,
          pipeline: value.pipeline || undefined,
          name: value.name || undefined,
          after: value.after,
          params
        });
      }
    });
    const done = promoted.done;
    if (!done) {
      return;
    }
    const { step, notes } = done;
    if (notes.some(n => n.includes('parameters'))) {
      await panel.context.revert(); // show the cell promote tagged, and save over nothing stale
    }
    await showDialog({
      title: `Step ${step} added`,
      // The notebook was reloaded above: the advice to reload it is moot here.
      body: notes.map(n => n.replace(/; if the notebook is open, reload it.*$/, '')).join('\n'),
      buttons: [Dialog.okButton()]
    });
  }
}
