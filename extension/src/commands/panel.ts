/** Commands of the sidebar itself: show it, refresh it. */

import { JupyterFrontEnd } from '@jupyterlab/application';
import { ITranslator } from '@jupyterlab/translation';
import { CommandRegistry } from '@lumino/commands';
import { Widget } from '@lumino/widgets';

import { bundle } from '../i18n';
import { PanelModel } from '../model';

export namespace PanelCommands {
  export interface ICommandIDs {
    openPanel: string;
    refresh: string;
  }

  export interface IOptions {
    commands: CommandRegistry;
    shell: JupyterFrontEnd.IShell;
    panel: Widget;
    model: PanelModel;
    ids: ICommandIDs;
    /** The lab's translator (strings in the 'aiinfra' domain); none: untranslated. */
    translator?: ITranslator;
  }

  export function add(options: IOptions): void {
    const { commands, shell, panel, model, ids } = options;
    const trans = bundle(options.translator);
    commands.addCommand(ids.openPanel, {
      label: trans.__('aiinfra: Show Sidebar'),
      execute: () => shell.activateById(panel.id)
    });
    commands.addCommand(ids.refresh, {
      label: trans.__('aiinfra: Refresh'),
      execute: () => model.refreshNow()
    });
  }
}
