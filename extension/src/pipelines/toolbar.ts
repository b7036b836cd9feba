/** The notebook toolbar button of "Add to pipeline" (every notebook panel gets one). */

import { DocumentRegistry } from '@jupyterlab/docregistry';
import { INotebookModel, NotebookPanel } from '@jupyterlab/notebook';
import { ITranslator } from '@jupyterlab/translation';
import { CommandToolbarButton, LabIcon } from '@jupyterlab/ui-components';
import { CommandRegistry } from '@lumino/commands';
import { IDisposable } from '@lumino/disposable';

import { bundle } from './i18n';

export class AddToPipelineButton implements DocumentRegistry.IWidgetExtension<NotebookPanel, INotebookModel> {
  constructor(
    private _commands: CommandRegistry,
    private _command: string,
    private _icon?: LabIcon,
    private _translator?: ITranslator
  ) {}

  createNew(panel: NotebookPanel): IDisposable {
    const button = new CommandToolbarButton({
      commands: this._commands,
      id: this._command,
      icon: this._icon,
      label: bundle(this._translator).__('Add to pipeline')
    });
    button.addClass('aiinfra-add-to-pipeline');
    panel.toolbar.insertAfter('cellType', 'aiinfra-add-to-pipeline', button);
    return button;
  }
}
