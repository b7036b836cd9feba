/**
 * A Dask dashboard page (the whole status page or one individual plot, such as
 * `individual-task-stream`) as a dockable main-area panel, through the
 * server's proxy `aiinfra/dashboard/{name}/...`.
 *
 * The panel follows the model: when its cluster is no longer running it says
 * so and unloads the page (no dead plots, no websocket errors), and it loads
 * the page again when a cluster of that name runs again.
 */

import { MainAreaWidget } from '@jupyterlab/apputils';
import { ITranslator } from '@jupyterlab/translation';
import { IFrame, LabIcon } from '@jupyterlab/ui-components';
import { PanelLayout, Widget } from '@lumino/widgets';

import { dashboardUrl } from './api';
import { bundle, TranslationBundle, UNTRANSLATED } from './i18n';
import { PanelModel } from './model';

/** What a pane shows for a cluster in a given state; null: the live page. */
export function paneNote(
  cluster: string,
  status: string | null | undefined,
  trans: TranslationBundle = UNTRANSLATED
): string | null {
  switch (status) {
    case 'running':
    case 'unknown':
      // unknown: its owner has not reported lately, so the listing cannot tell; the page
      // itself shows whether the dashboard answers.
      return null;
    case 'starting':
      return trans.__('Cluster %1 is starting; its dashboard appears here once it runs.', cluster);
    case 'lost':
      return trans.__(
        'Cluster %1 was lost: the process that owned it ended without stopping it. This panel comes back to life if a cluster named %1 is started again; close it otherwise.',
        cluster
      );
    case 'unreachable':
      return trans.__('Cluster %1 does not answer; this panel shows its dashboard again when it does.', cluster);
    default:
      return trans.__(
        'Cluster %1 has stopped, so there is nothing to show. This panel comes back to life if a cluster named %1 is started again; close it otherwise.',
        cluster
      );
  }
}

export class DashboardPane extends MainAreaWidget<DashboardPane.Content> {
  constructor(options: DashboardPane.IOptions) {
    const content = new DashboardPane.Content(dashboardUrl(options.baseUrl, options.cluster, options.plot));
    super({ content });
    this.cluster = options.cluster;
    this.plot = options.plot;
    this.label = options.label;
    this._model = options.model;
    this._trans = bundle(options.translator);
    this.id = DashboardPane.id(options.cluster, options.plot);
    this.title.label =
      options.plot === 'status'
        ? this._trans.__('Dask: %1', options.cluster)
        : this._trans.__('%1 · %2', options.label, options.cluster);
    this.title.caption = this._trans.__('Dask dashboard of %1: %2', options.cluster, options.label);
    if (options.icon) {
      this.title.icon = options.icon;
    }
    this.title.closable = true;
    this.addClass('aiinfra-dashboard-tab');
    this.node.dataset.cluster = options.cluster;
    this.node.dataset.plot = options.plot;
    this._model.changed.connect(this._follow, this);
    this._model.watchers += 1; // its cluster's state must stay fresh while the sidebar is hidden
    this._follow();
  }

  readonly cluster: string;
  readonly plot: string;
  readonly label: string;

  dispose(): void {
    if (!this.isDisposed) {
      this._model.changed.disconnect(this._follow, this);
      this._model.watchers -= 1;
    }
    super.dispose();
  }

  private _follow(): void {
    const clusters = this._model.clusters.data;
    if (!clusters) {
      return; // not listed yet: keep the page
    }
    const status = clusters.find(c => c.name === this.cluster)?.status ?? null;
    this.content.setNote(paneNote(this.cluster, status, this._trans));
  }

  private _model: PanelModel;
  private _trans: TranslationBundle;
}

export namespace DashboardPane {
  export interface IOptions {
    model: PanelModel;
    /** The server's base URL: the proxy lives below it. */
    baseUrl: string;
    cluster: string;
    /** Dashboard path: `status` for the whole page, or an individual plot's path. */
    plot: string;
    label: string;
    icon?: LabIcon;
    /** The lab's translator (strings in the 'aiinfra' domain); none: untranslated. */
    translator?: ITranslator;
  }

  /** One id per cluster and page, so opening it again activates the open one. */
  export function id(cluster: string, plot: string): string {
    return `aiinfra-dashboard-${cluster}-${plot.replace(/[^A-Za-z0-9_-]/g, '_')}`;
  }

  /** The page in an iframe, or a note in its place while the cluster is not running. */
  export class Content extends Widget {
    constructor(url: string) {
      super();
      this.addClass('aiinfra-pane');
      this._url = url;
      this._note.addClass('aiinfra-pane-note');
      this._note.hide();
      this._frame = new IFrame({ sandbox: SANDBOX });
      this._frame.url = url;
      const layout = (this.layout = new PanelLayout());
      layout.addWidget(this._note);
      layout.addWidget(this._frame);
    }

    get url(): string {
      return this._url;
    }

    /** The note shown instead of the page, or null to show the page. */
    get note(): string | null {
      return this._noteText;
    }

    setNote(note: string | null): void {
      if (note === this._noteText) {
        return;
      }
      this._noteText = note;
      if (note === null) {
        this._note.hide();
        this._frame.url = this._url; // load the page again (a new scheduler, a new socket)
        this._frame.show();
      } else {
        this._note.node.textContent = note;
        this._note.show();
        this._frame.url = 'about:blank'; // unload: no dead plots, no reconnecting socket
        this._frame.hide();
      }
    }

    private _url: string;
    private _noteText: string | null = null;
    private _note = new Widget();
    private _frame: IFrame;
  }

  /** Bokeh needs scripts; no allow-same-origin: the proxied page never acts with the Jupyter origin's rights. */
  export const SANDBOX: IFrame.SandboxExceptions[] = ['allow-scripts', 'allow-popups'];
}
