/**
 * The Schedules panel (issue 26): every schedule of this user's scheduler service
 * with its next run in the browser's local time, its last run's status, and
 * pause / resume / run now / delete; and the "Schedule…" form (cron or interval,
 * time zone, parameters, cluster, notify) behind the `aiinfra:schedule-pipeline`
 * command. Everything goes through `aiinfra/api/schedules`; a rejected value
 * stays in the form under its field.
 *
 * DOM hooks for tests: each row is `.aiinfra-schedule[data-name=NAME]` with
 * `[data-field=next|status|trigger]` cells and buttons `[data-action=pause|
 * resume|run|delete]`; form inputs have `name` attributes.
 */

import { JupyterFrontEnd } from '@jupyterlab/application';
import { Dialog, MainAreaWidget, ReactWidget, showDialog, showErrorMessage } from '@jupyterlab/apputils';
import { DocumentRegistry } from '@jupyterlab/docregistry';
import { INotebookModel, INotebookTracker, NotebookPanel } from '@jupyterlab/notebook';
import { ITranslator, TranslationBundle } from '@jupyterlab/translation';
import { CommandToolbarButton, LabIcon } from '@jupyterlab/ui-components';
import { CommandRegistry } from '@lumino/commands';
import { IDisposable } from '@lumino/disposable';
import { Message } from '@lumino/messaging';
import * as React from 'react';

import { IRequester, requestAPI } from '../api';
import { choiceSelect, FormWidget, textArea } from '../dialog';
import { FormError, showFormDialog } from '../formdialog';
import { MainAreaTab } from '../maintab';
import { clusterChoices } from './dialogs';
import { bundle } from './i18n';

export interface ISchedule {
  name: string;
  path: string | null;
  trigger: { cron?: string; tz?: string; every?: string; seconds?: number } | null;
  next_run: string | null;
  paused: boolean;
  last_run: { run_id: string | null; status: string; started?: string; error?: string } | null;
  last_firing: { outcome: string; at: string; reason: string | null; count?: number } | null;
  overlap: string | null;
  cluster: string | null;
  notify: string[];
  error: string | null;
}

export interface IScheduleList {
  schedules: ISchedule[];
  service: { running: boolean; pid: number | null };
}

/** What the form holds; `formToScheduleBody` makes the POST body of it. */
export interface IScheduleForm {
  name: string;
  kind: 'cron' | 'every';
  cron: string;
  tz: string;
  every: string;
  params: string;
  cluster: string;
  overlap: string;
  notify: string;
}

/** The next run in the browser's local time (or a dash). */
export function localTime(iso: string | null): string {
  return iso ? new Date(iso).toLocaleString() : '—';
}

/** The browser's IANA zone, the form's default for a cron. */
export function browserZone(): string {
  try {
    return Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';
  } catch {
    return 'UTC';
  }
}

export function triggerText(s: ISchedule, trans: TranslationBundle): string {
  if (!s.trigger) {
    return '?';
  }
  if (s.trigger.cron) {
    return trans.__('cron %1 (%2)', s.trigger.cron, s.trigger.tz ?? 'UTC');
  }
  return trans.__('every %1', s.trigger.every ?? '?');
}

/** The POST body of the form, or the field that is wrong (checked again by the server). */
export function formToScheduleBody(
  path: string,
  form: IScheduleForm,
  trans: TranslationBundle
): { body?: Record<string, unknown>; error?: string; field?: string } {
  const body: Record<string, unknown> = { name: form.name.trim(), path, overlap: form.overlap };
  if (form.kind === 'cron') {
    body.cron = form.cron.trim();
    if (form.tz.trim()) {
      body.tz = form.tz.trim();
    }
  } else {
    body.every = form.every.trim();
  }
  const params: Record<string, unknown> = {};
  for (const raw of form.params.split('\n')) {
    const line = raw.trim();
    if (!line) {
      continue;
    }
    const eq = line.indexOf('=');
    const key = eq > 0 ? line.slice(0, eq).trim() : '';
    if (!/^([A-Za-z_][A-Za-z0-9_-]*\.)?[A-Za-z_][A-Za-z0-9_]*$/.test(key)) {
      return {
        error: trans.__('params: got %1; allowed: KEY=VALUE lines (KEY or STEP.KEY)', JSON.stringify(line)),
        field: 'params'
      };
    }
    const text = line.slice(eq + 1).trim();
    try {
      params[key] = JSON.parse(text);
    } catch {
      params[key] = text;
    }
  }
  if (Object.keys(params).length) {
    body.params = params;
  }
  if (form.cluster) {
    body.cluster = form.cluster;
  }
  const notify = form.notify
    .split('\n')
    .map(n => n.trim())
    .filter(n => n);
  if (notify.length) {
    body.notify = notify;
  }
  return { body };
}

/** Requests of the panel and the form. */
export class SchedulesModel {
  constructor(readonly requester: IRequester) {}

  list(): Promise<IScheduleList> {
    return requestAPI<IScheduleList>(this.requester, ['schedules']);
  }

  create(body: Record<string, unknown>): Promise<ISchedule> {
    return requestAPI<ISchedule>(this.requester, ['schedules'], 'POST', body);
  }

  act(name: string, action: 'pause' | 'resume' | 'run'): Promise<unknown> {
    return requestAPI(this.requester, ['schedules', name, action], 'POST', {});
  }

  remove(name: string): Promise<unknown> {
    return requestAPI(this.requester, ['schedules', name], 'DELETE');
  }
}

/** The panel: a table of schedules, refreshed every few seconds while it is shown. */
export class SchedulesPanel extends ReactWidget {
  constructor(options: SchedulesPanel.IOptions) {
    super();
    this._model = options.model;
    this._trans = bundle(options.translator);
    this._interval = options.interval ?? 5000;
    this.addClass('aiinfra-schedules');
  }

  /** Fetch the list now (after an action, on show, on a timer). */
  async refresh(): Promise<void> {
    try {
      this._data = await this._model.list();
      this._error = null;
    } catch (error) {
      this._error = (error as Error).message;
    }
    this.update();
  }

  protected onAfterShow(msg: Message): void {
    super.onAfterShow(msg);
    void this.refresh();
    if (this._timer === null) {
      this._timer = window.setInterval(() => void this.refresh(), this._interval);
    }
  }

  protected onAfterHide(msg: Message): void {
    super.onAfterHide(msg);
    this._stop();
  }

  dispose(): void {
    this._stop();
    super.dispose();
  }

  private _stop(): void {
    if (this._timer !== null) {
      window.clearInterval(this._timer);
      this._timer = null;
    }
  }

  private async _act(s: ISchedule, action: 'pause' | 'resume' | 'run' | 'delete'): Promise<void> {
    const trans = this._trans;
    try {
      if (action === 'delete') {
        const answer = await showDialog({
          title: trans.__('Delete schedule %1?', s.name),
          body: trans.__('Runs it started go on; it fires no more.'),
          buttons: [Dialog.cancelButton(), Dialog.warnButton({ label: trans.__('Delete') })]
        });
        if (!answer.button.accept) {
          return;
        }
        await this._model.remove(s.name);
      } else {
        await this._model.act(s.name, action);
      }
    } catch (error) {
      await showErrorMessage(trans.__('Schedule %1', s.name), (error as Error).message);
    }
    await this.refresh();
  }

  render(): JSX.Element {
    const trans = this._trans;
    const data = this._data;
    return (
      <div className="aiinfra-schedules-body">
        <h2>{trans.__('Schedules')}</h2>
        {this._error && (
          <div className="aiinfra-field-error" role="alert">
            {this._error}
          </div>
        )}
        {data && (
          <div className="aiinfra-help aiinfra-scheduler-state" data-running={String(data.service.running)}>
            {data.service.running
              ? trans.__('Scheduler running (pid %1): schedules fire with no Jupyter server.', data.service.pid ?? '?')
              : trans.__('Scheduler not running: the next aiinfra command or server start brings it back.')}
          </div>
        )}
        {data && data.schedules.length === 0 && (
          <div className="aiinfra-note">
            {trans.__('No schedules yet: use Schedule… in the Run Pipeline dialog or on a notebook.')}
          </div>
        )}
        {data && data.schedules.length > 0 && (
          <table className="aiinfra-schedule-table">
            <thead>
              <tr>
                <th>{trans.__('Name')}</th>
                <th>{trans.__('Runs')}</th>
                <th>{trans.__('When')}</th>
                <th>{trans.__('Next run')}</th>
                <th>{trans.__('Last run')}</th>
                <th />
              </tr>
            </thead>
            <tbody>{data.schedules.map(s => this._row(s, trans))}</tbody>
          </table>
        )}
      </div>
    );
  }

  private _row(s: ISchedule, trans: TranslationBundle): JSX.Element {
    const last = s.last_run;
    const status = s.error ? 'broken' : last ? last.status : 'none';
    const firing = s.last_firing && s.last_firing.outcome !== 'started' ? s.last_firing : null;
    const button = (action: 'pause' | 'resume' | 'run' | 'delete', label: string, warn = false) => (
      <button
        className={`jp-mod-styled aiinfra-button${warn ? ' aiinfra-mod-warn' : ''}`}
        data-action={action}
        onClick={() => void this._act(s, action)}
      >
        {label}
      </button>
    );
    return (
      <tr key={s.name} className="aiinfra-schedule" data-name={s.name} data-paused={String(s.paused)}>
        <td data-field="name">{s.name}</td>
        <td data-field="path" title={s.path ?? ''}>
          {s.path ? s.path.split('/').slice(-2).join('/') : '?'}
        </td>
        <td data-field="trigger">{triggerText(s, trans)}</td>
        <td data-field="next" data-iso={s.next_run ?? ''}>
          {s.paused ? trans.__('paused') : localTime(s.next_run)}
        </td>
        <td data-field="status" data-status={status} title={s.error ?? last?.error ?? firing?.reason ?? ''}>
          {s.error ? trans.__('broken: %1', s.error) : last ? `${last.status} ${last.run_id ?? ''}`.trim() : '—'}
          {firing && (
            <div className="aiinfra-help" data-field="firing">
              {trans.__('%1: %2', firing.outcome, firing.reason ?? '')}
            </div>
          )}
        </td>
        <td className="aiinfra-schedule-actions">
          {s.paused ? button('resume', trans.__('Resume')) : button('pause', trans.__('Pause'))}
          {button('run', trans.__('Run now'))}
          {button('delete', trans.__('Delete'), true)}
        </td>
      </tr>
    );
  }

  private _model: SchedulesModel;
  private _trans: TranslationBundle;
  private _interval: number;
  private _timer: number | null = null;
  private _data: IScheduleList | null = null;
  private _error: string | null = null;
}

export namespace SchedulesPanel {
  export interface IOptions {
    model: SchedulesModel;
    translator?: ITranslator;
    /** Milliseconds between refreshes while shown (default 5000). */
    interval?: number;
  }
}

/** The "Schedule…" form: cron or interval, zone, params, cluster, overlap, notify. */
export class ScheduleForm extends FormWidget<IScheduleForm> {
  constructor(options: ScheduleForm.IOptions) {
    super();
    this._path = options.path;
    this._clusters = options.clusters;
    this._trans = bundle(options.translator);
    const stem = (options.path.split('/').pop() ?? 'job').replace(/\.(ipynb|ya?ml)$/i, '');
    this._value = {
      name: stem.toLowerCase().replace(/[^a-z0-9_-]+/g, '-').replace(/^[-_]+/, '').slice(0, 50) || 'job',
      kind: 'cron',
      cron: '0 2 * * *',
      tz: browserZone(),
      every: '1h',
      params: '',
      cluster: '',
      overlap: 'skip',
      notify: ''
    };
    this.addClass('aiinfra-schedule-form');
  }

  getValue(): IScheduleForm {
    return { ...this._value };
  }

  render(): JSX.Element {
    const trans = this._trans;
    const v = this._value;
    const shown = ['name', 'cron', 'tz', 'every', 'params', 'cluster', 'overlap', 'notify', '-p'];
    const input = (name: keyof IScheduleForm, placeholder = '') => (
      <input
        className="jp-mod-styled"
        name={name}
        value={v[name]}
        placeholder={placeholder}
        onChange={e => this._set({ [name]: e.target.value } as Partial<IScheduleForm>)}
      />
    );
    return (
      <div className="aiinfra-schedule-body">
        {this.formError(shown)}
        <div className="aiinfra-help">{this._path}</div>
        {this.labelled('name', trans.__('Name'), input('name'))}
        <div className="aiinfra-field" data-option="kind">
          <span>{trans.__('When')}</span>
          <span>
            <label>
              <input type="radio" name="kind" value="cron" checked={v.kind === 'cron'} onChange={() => this._set({ kind: 'cron' })} />
              {trans.__('cron')}
            </label>{' '}
            <label>
              <input type="radio" name="kind" value="every" checked={v.kind === 'every'} onChange={() => this._set({ kind: 'every' })} />
              {trans.__('every')}
            </label>
          </span>
        </div>
        {v.kind === 'cron' ? (
          <>
            {this.labelled('cron', trans.__('Cron'), input('cron', '0 2 * * *'))}
            {this.labelled('tz', trans.__('Time zone'), input('tz', 'Europe/Berlin'))}
          </>
        ) : (
          this.labelled('every', trans.__('Every'), input('every', '30m'))
        )}
        {this.labelled(
          'params',
          trans.__('Params'),
          textArea('params', v.params, params => this._set({ params }), 3, trans.__('one KEY=VALUE per line (values are JSON where they parse)')),
          'params',
          '-p'
        )}
        {this.labelled(
          'cluster',
          trans.__('Cluster'),
          choiceSelect('cluster', v.cluster, cluster => this._set({ cluster }), clusterChoices(this._clusters, trans))
        )}
        {this.labelled(
          'overlap',
          trans.__('If still running'),
          choiceSelect('overlap', v.overlap, overlap => this._set({ overlap }), [
            ['skip', trans.__('skip this run')],
            ['queue', trans.__('queue one run')],
            ['allow', trans.__('run anyway')]
          ])
        )}
        {this.labelled(
          'notify',
          trans.__('Notify'),
          textArea('notify', v.notify, notify => this._set({ notify }), 2, trans.__('webhook:https://… or email:you@example.org, one per line'))
        )}
      </div>
    );
  }

  private _set(change: Partial<IScheduleForm>): void {
    this._value = { ...this._value, ...change };
    this.update();
  }

  private _path: string;
  private _clusters: string[];
  private _trans: TranslationBundle;
  private _value: IScheduleForm;
}

export namespace ScheduleForm {
  export interface IOptions {
    /** The pipeline.yaml or notebook, relative to the server's root. */
    path: string;
    clusters: string[];
    translator?: ITranslator;
  }
}

/** "Schedule…" on every notebook's toolbar. */
export class ScheduleNotebookButton implements DocumentRegistry.IWidgetExtension<NotebookPanel, INotebookModel> {
  constructor(
    private _commands: CommandRegistry,
    private _icon?: LabIcon,
    private _translator?: ITranslator
  ) {}

  createNew(panel: NotebookPanel): IDisposable {
    const button = new CommandToolbarButton({
      commands: this._commands,
      id: ScheduleCommands.schedule,
      args: { path: panel.context.path },
      icon: this._icon,
      label: bundle(this._translator).__('Schedule…')
    });
    button.addClass('aiinfra-schedule-notebook');
    panel.toolbar.insertAfter('cellType', 'aiinfra-schedule-notebook', button);
    return button;
  }
}

/** The commands: open the panel, and schedule a pipeline or notebook from a form. */
export namespace ScheduleCommands {
  export const schedule = 'aiinfra:schedule-pipeline';
  export const open = 'aiinfra:open-schedules';

  export interface IOptions {
    commands: CommandRegistry;
    shell: JupyterFrontEnd.IShell;
    requester: IRequester;
    /** Names of the registered clusters, for the form's cluster field. */
    clusters: () => Promise<string[]>;
    notebooks?: INotebookTracker | null;
    translator?: ITranslator;
    icon?: LabIcon;
  }

  export function add(options: IOptions): void {
    const { commands, shell } = options;
    const trans = bundle(options.translator);
    const model = new SchedulesModel(options.requester);
    const tab = new MainAreaTab(shell, {
      content: () => new SchedulesPanel({ model, translator: options.translator }),
      id: 'aiinfra-schedules',
      label: trans.__('Schedules'),
      icon: options.icon
    });

    const openPanel = (): MainAreaWidget<SchedulesPanel> => {
      const view = tab.open();
      void view.content.refresh();
      return view;
    };

    commands.addCommand(open, {
      label: trans.__('aiinfra: Schedules'),
      caption: trans.__('Schedules of pipelines and notebooks: next run, last run, pause, run now'),
      execute: () => {
        openPanel();
      }
    });

    commands.addCommand(schedule, {
      label: trans.__('aiinfra: Schedule…'),
      caption: trans.__('Run a pipeline or notebook on a cron or an interval, with no one present'),
      execute: async args => {
        const path = String(args.path ?? '') || options.notebooks?.currentWidget?.context.path || '';
        if (!path) {
          await showErrorMessage(trans.__('Schedule'), trans.__('Open a notebook or choose a pipeline.yaml first.'));
          return;
        }
        const clusters = await options.clusters().catch(() => [] as string[]);
        const done = await showFormDialog({
          title: trans.__('Schedule %1', path),
          body: new ScheduleForm({ path, clusters, translator: options.translator }),
          accept: trans.__('Schedule'),
          submit: async value => {
            const { body, error, field } = formToScheduleBody(path, value, trans);
            if (!body) {
              throw new FormError(error ?? trans.__('invalid form'), field ?? null);
            }
            await model.create(body);
          }
        });
        if (done) {
          openPanel();
        }
      }
    });
  }
}
