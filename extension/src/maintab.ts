/**
 * One main-area tab of a kind (the run view, the Schedules panel): made on first
 * use, made again once closed, and brought to the front each time it is opened.
 */

import { JupyterFrontEnd } from '@jupyterlab/application';
import { MainAreaWidget } from '@jupyterlab/apputils';
import { LabIcon } from '@jupyterlab/ui-components';
import { Widget } from '@lumino/widgets';

export class MainAreaTab<T extends Widget> {
  constructor(
    private _shell: JupyterFrontEnd.IShell,
    private _options: MainAreaTab.IOptions<T>
  ) {}

  /** The tab last made (closed or not), or null before the first `open()`. */
  get current(): MainAreaWidget<T> | null {
    return this._view;
  }

  /** Shows the tab (making it when there is none open) and activates it. */
  open(): MainAreaWidget<T> {
    if (!this._view || this._view.isDisposed) {
      const { content, id, label, icon, className } = this._options;
      const view = new MainAreaWidget({ content: content() });
      view.id = id;
      view.title.label = label;
      view.title.closable = true;
      if (icon) {
        view.title.icon = icon;
      }
      if (className) {
        view.addClass(className);
      }
      this._view = view;
    }
    if (!this._view.isAttached) {
      this._shell.add(this._view, 'main');
    }
    this._shell.activateById(this._view.id);
    return this._view;
  }

  private _view: MainAreaWidget<T> | null = null;
}

export namespace MainAreaTab {
  export interface IOptions<T extends Widget> {
    /** Makes the tab's content (each time the tab is made). */
    content: () => T;
    id: string;
    label: string;
    icon?: LabIcon;
    /** A class added to the tab's widget. */
    className?: string;
  }
}
