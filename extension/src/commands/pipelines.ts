/**
 * Commands of pipelines: run a pipeline.yaml from a dialog made from its spec
 * (palette, sidebar, file browser context menu or a path picker; the dialog
 * names the pipeline and offers the others), the run view in the main area
 * (cancel, resume, re-run failed steps, run from a step, executed notebooks
 * read-only), and "Add to pipeline" for the notebook in front.
 */

import { JupyterFrontEnd } from '@jupyterlab/application';
import { Dialog, InputDialog, MainAreaWidget, showDialog, showErrorMessage } from '@jupyterlab/apputils';
import { IDocumentManager } from '@jupyterlab/docmanager';
import { FileDialog, IFileBrowserFactory } from '@jupyterlab/filebrowser';
import { INotebookTracker, NotebookPanel } from '@jupyterlab/notebook';
import { Contents } from '@jupyterlab/services';
import { ITranslator, TranslationBundle } from '@jupyterlab/translation';
import { LabIcon } from '@jupyterlab/ui-components';
import { CommandRegistry } from '@lumino/commands';
import { Widget } from '@lumino/widgets';

import { ICluster, PanelModel } from '../model';
import { parseParamLines, PromoteForm, RunPipelineForm } from '../pipelines/dialogs';
import { bundle } from '../pipelines/i18n';
import { makeReadOnly, openReadOnly, READ_ONLY_CLASS } from '../pipelines/readonly';
import { executedRun, IRunRecord, pipelinePath, RunsModel } from '../pipelines/runs';
import { RunsView } from '../pipelines/runview';
import { fetchSpec, formToRunBody, ISpec } from '../pipelines/spec';
import { FormError, showFormDialog } from '../formdialog';
import { MainAreaTab } from '../maintab';
import { reportFailure } from './common';

/** The Schedules panel's command (issue 26): "Schedule…" is offered only where it exists. */
export const SCHEDULE_COMMAND = 'aiinfra:schedule-pipeline';

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

  /** Commands the run view calls with a run (and a step): not in the palette. */
  export const RUN_IDS = {
    resumeRun: 'aiinfra:resume-run',
    runFrom: 'aiinfra:run-from-step'
  };

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
    /** The notebook "Add to pipeline" promotes; executed notebooks it opens are made read-only. */
    notebooks: INotebookTracker | null;
    /** Reads an executed notebook's JSON (the failing cell's error in the run view). */
    contents: Contents.IManager | null;
    icon?: LabIcon;
    translator?: ITranslator | null;
  }

  export function add(options: IOptions): void {
    const { commands, shell, model, ids } = options;
    const translator = options.translator ?? undefined;
    const trans = bundle(translator);
    /** The run view: one main-area tab, created on first use. */
    const tab = new MainAreaTab(shell, {
      content: () =>
        new RunsView({
          model: new RunsModel({
            requester: model.requester,
            trans,
            readNotebook: options.contents
              ? async path => (await options.contents!.get(path, { content: true, type: 'notebook' })).content
              : undefined
          }),
          commands,
          translator,
          commandIDs: {
            openExecuted: ids.openExecuted,
            cancelRun: ids.cancelRun,
            rerunFailed: ids.rerunFailed,
            ...RUN_IDS
          }
        }),
      id: 'aiinfra-runs',
      label: trans.__('Pipeline runs'),
      icon: options.icon,
      className: 'aiinfra-runs-tab'
    });
    const runsView = (): MainAreaWidget<RunsView> => tab.open();

    /** Pipelines that ran before (below the root), latest first: the dialog's list. */
    const knownPipelines = (): string[] => {
      const runs = [...((model.runs.data?.runs ?? []) as IRunRecord[]), ...(tab.current?.content.model.runs ?? [])];
      runs.sort((a, b) => (Number(b.start) || 0) - (Number(a.start) || 0));
      return [...new Set(runs.map(pipelinePath).filter(Boolean))];
    };

    commands.addCommand(ids.runPipeline, {
      label: trans.__('aiinfra: Run Pipeline…'),
      caption: trans.__('Run a pipeline.yaml with aiinfra: parameters, cluster, only, force'),
      execute: async args => {
        let path =
          String(args.path ?? '') ||
          Private.selectedYaml(options.browserFactory) ||
          knownPipelines()[0] ||
          (await Private.pick(options, trans));
        const clusters = path
          ? await model
              .request<{ clusters: ICluster[] }>(['clusters'])
              .then(data => data.clusters.map(c => c.name))
              .catch(() => [] as string[])
          : [];
        while (path) {
          let spec: ISpec;
          try {
            spec = await fetchSpec(model.requester, path);
          } catch (error) {
            await showErrorMessage(trans.__('Cannot run %1', path), (error as Error).message);
            return;
          }
          // The lab shows one dialog at a time: "Other file…" and "Schedule…" close this one first.
          let next: { pick?: boolean; schedule?: string } = {};
          const close = (then: typeof next) => {
            next = then;
            Dialog.tracker.currentWidget?.reject();
          };
          const form = new RunPipelineForm({
            spec,
            clusters,
            pipelines: knownPipelines(),
            loadSpec: other => fetchSpec(model.requester, other),
            pickFile: () => close({ pick: true }),
            schedule: commands.hasCommand(SCHEDULE_COMMAND) ? chosen => close({ schedule: chosen }) : undefined,
            translator
          });
          await showFormDialog({
            title: trans.__('Run a pipeline'),
            body: form,
            accept: trans.__('Run'),
            submit: async value => {
              const { body, error, field } = formToRunBody(form.spec, value, trans);
              if (!body) {
                throw new FormError(error ?? trans.__('invalid form'), field ?? null);
              }
              await runsView().content.model.start({ ...body });
            }
          });
          if (next.schedule) {
            await commands.execute(SCHEDULE_COMMAND, { path: next.schedule });
          }
          path = next.pick ? await Private.pick(options, trans) : '';
        }
        void model.poll.refresh();
      }
    });

    commands.addCommand(ids.pickPipeline, {
      label: trans.__('aiinfra: Run Pipeline from File…'),
      caption: trans.__('Pick a pipeline.yaml in a file dialog and run it'),
      execute: async () => {
        const path = await Private.pick(options, trans);
        if (path) {
          await commands.execute(ids.runPipeline, { path });
        }
      }
    });

    commands.addCommand(ids.openRuns, {
      label: trans.__('aiinfra: Pipeline Runs'),
      caption: trans.__('Runs grouped by pipeline, with their DAG and live step states'),
      execute: args => {
        const widget = runsView();
        // A run by its id, or a launch (one that never became a run shows its log there).
        const id = args.run_id ?? args.launch;
        if (id) {
          widget.content.model.select(String(id));
        }
      }
    });

    commands.addCommand(ids.cancelRun, {
      label: trans.__('aiinfra: Cancel Run'),
      execute: async args => {
        const runId = String(args.run_id ?? '');
        if (!runId) {
          return;
        }
        const answer = await showDialog({
          title: trans.__('Cancel run %1?', runId),
          body: trans.__('Running steps are stopped (their kernels too); finished steps stay cached.'),
          buttons: [
            Dialog.cancelButton({ label: trans.__('Keep running') }),
            Dialog.warnButton({ label: trans.__('Cancel run') })
          ]
        });
        if (!answer.button.accept) {
          return;
        }
        await reportFailure(trans.__('Cannot cancel %1', runId), () => runsView().content.model.cancel(runId));
      }
    });

    /** The run a command was called for, from the run view's model. */
    const runOf = (args: { run_id?: unknown }): [RunsModel, IRunRecord | undefined] => {
      const runs = runsView().content.model;
      return [runs, runs.runs.find(r => r.run_id === String(args.run_id ?? ''))];
    };

    commands.addCommand(ids.rerunFailed, {
      label: trans.__('aiinfra: Re-run Failed Steps'),
      execute: async args => {
        const [runs, run] = runOf(args);
        if (run) {
          await reportFailure(trans.__('Cannot re-run %1', run.run_id), () => runs.rerunFailed(run));
        }
      }
    });

    commands.addCommand(RUN_IDS.resumeRun, {
      label: trans.__('aiinfra: Resume Run'),
      caption: trans.__('Run the failed and interrupted steps of a run again, and everything after them'),
      execute: async args => {
        const [runs, run] = runOf(args);
        if (run) {
          await reportFailure(trans.__('Cannot resume %1', run.run_id), () => runs.resume(run));
        }
      }
    });

    commands.addCommand(RUN_IDS.runFrom, {
      label: args => trans.__('aiinfra: Run from %1', String(args.step ?? trans.__('a step'))),
      execute: async args => {
        const [runs, run] = runOf(args);
        const step = String(args.step ?? '');
        if (!run || !step) {
          return;
        }
        const answer = await showDialog({
          title: trans.__('Run from %1?', step),
          body: trans.__(
            'A new run of %1 runs %2 and every step after it, whatever the cache holds, with the parameters and cluster of run %3. Steps before it are taken from the cache.',
            pipelinePath(run),
            step,
            run.run_id
          ),
          buttons: [Dialog.cancelButton(), Dialog.okButton({ label: trans.__('Run from here') })]
        });
        if (answer.button.accept) {
          await reportFailure(trans.__('Cannot run from %1', step), () => runs.runFrom(run, step));
        }
      }
    });

    commands.addCommand(ids.openExecuted, {
      label: trans.__('aiinfra: Open Executed Notebook (read-only)'),
      execute: async args => {
        const path = String(args.path ?? '');
        if (!path || !options.docManager) {
          return;
        }
        await reportFailure(trans.__('Cannot open %1', path), () =>
          openReadOnly(options.docManager!, path, {
            runId: String(args.run_id ?? '') || undefined,
            source: String(args.source ?? '') || undefined,
            open: source => void commands.execute('docmanager:open', { path: source }),
            translator
          })
        );
      }
    });

    const readOnly = (panel: NotebookPanel | null | undefined) => !!panel && panel.hasClass(READ_ONLY_CLASS);
    commands.addCommand(ids.addToPipeline, {
      label: trans.__('aiinfra: Add to Pipeline…'),
      caption: trans.__('Make this notebook a step of a pipeline.yaml (what %aiinfra promote does)'),
      isEnabled: () => !!options.notebooks?.currentWidget && !readOnly(options.notebooks.currentWidget),
      execute: async () => {
        const current = options.notebooks?.currentWidget;
        if (current && !readOnly(current)) {
          await Private.promote(model, current, trans, translator);
        }
      }
    });

    // A notebook in a run's folder is a run's output however it was opened (file
    // browser, a restored layout): it is shown read-only too.
    options.notebooks?.widgetAdded.connect((_, panel) => {
      const executed = executedRun(panel.context.path);
      if (executed && !readOnly(panel)) {
        void panel.context.ready.then(() => {
          if (!panel.isDisposed) {
            makeReadOnly(panel, { runId: executed.runId, translator });
            commands.notifyCommandChanged(ids.addToPipeline);
          }
        });
      }
    });
    options.notebooks?.currentChanged.connect(() => commands.notifyCommandChanged(ids.addToPipeline));
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
  export async function pick(options: PipelineCommands.IOptions, trans: TranslationBundle): Promise<string> {
    if (options.docManager) {
      const result = await FileDialog.getOpenFiles({
        manager: options.docManager,
        title: trans.__('Run which pipeline?'),
        // Start where the file browser is: the pipeline is most likely there.
        defaultPath: options.browserFactory?.tracker.currentWidget?.model.path,
        filter: item => (item.type === 'directory' || /\.ya?ml$/.test(item.name) ? {} : null)
      });
      const chosen = result.button.accept ? (result.value ?? []) : [];
      return chosen.length ? chosen[0].path : '';
    }
    const answer = await InputDialog.getText({
      title: trans.__('Run which pipeline?'),
      placeholder: trans.__('folder/pipeline.yaml (relative to the Jupyter root)')
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
  export async function promote(
    model: PanelModel,
    panel: NotebookPanel,
    trans: TranslationBundle,
    translator?: ITranslator
  ): Promise<void> {
    const notebook = panel.context.path;
    const folder = folderOf(notebook);
    const pipeline = folder ? `${folder}/pipeline.yaml` : 'pipeline.yaml';
    const form = new PromoteForm({ pipeline, name: stem(notebook), translator });
    void existingSteps(model, pipeline).then(steps => form.setSteps(steps));
    const promoted: { done?: { step: string; pipeline: string; notes: string[] } } = {};
    // The form stays open until promote succeeded; a rejected value is shown under its field.
    await showFormDialog({
      title: trans.__('Add %1 to a pipeline', notebook.split('/').pop() ?? notebook),
      body: form,
      accept: trans.__('Add'),
      submit: async value => {
        const { params, error } = parseParamLines(value.params, trans);
        if (!params) {
          throw new FormError(error ?? trans.__('invalid params'), 'params');
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
      title: trans.__('Step %1 added', step),
      // The notebook was reloaded above: the advice to reload it is moot here.
      body: notes.map(n => n.replace(/; if the notebook is open, reload it.*$/, '')).join('\n'),
      buttons: [Dialog.okButton()]
    });
  }
}
