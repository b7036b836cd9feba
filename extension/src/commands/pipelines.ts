/** Commands of pipelines: run a pipeline.yaml (from the palette or the file browser). */

import { JupyterFrontEnd } from '@jupyterlab/application';
import { InputDialog } from '@jupyterlab/apputils';
import { IFileBrowserFactory } from '@jupyterlab/filebrowser';
import { CommandRegistry } from '@lumino/commands';
import { Widget } from '@lumino/widgets';

import { PanelModel } from '../model';
import { reportFailure } from './common';

export namespace PipelineCommands {
  export interface ICommandIDs {
    runPipeline: string;
  }

  export interface IOptions {
    commands: CommandRegistry;
    shell: JupyterFrontEnd.IShell;
    panel: Widget;
    model: PanelModel;
    ids: ICommandIDs;
    /** Where a selected pipeline.yaml is taken from, when the file browser is there. */
    browserFactory: IFileBrowserFactory | null;
  }

  export function add(options: IOptions): void {
    const { commands, shell, panel, model, ids } = options;
    commands.addCommand(ids.runPipeline, {
      label: 'aiinfra: Run Pipeline',
      caption: 'Run a pipeline.yaml with aiinfra',
      execute: async args => {
        let path = String(args.path ?? '') || Private.selectedYaml(options.browserFactory);
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
        shell.activateById(panel.id);
        await model.refreshNow();
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
}
