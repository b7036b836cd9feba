/**
 * The sidebar: Devices, Clusters and Pipelines, refreshed by one poll that
 * backs off on failure and stands by while the panel is hidden.
 */

import { ReactWidget, UseSignal } from '@jupyterlab/apputils';
import { codeIcon, LabIcon, refreshIcon, stopIcon, tabIcon, usersIcon } from '@jupyterlab/ui-components';
import { CommandRegistry } from '@lumino/commands';
import { Message } from '@lumino/messaging';
import * as React from 'react';

import {
  clusterSummary,
  formatBytes,
  ICluster,
  jobLine,
  memoryPercent,
  PanelModel,
  runSteps,
  stepNotebookPath
} from './model';

/** The sidebar widget: it renders the model and runs commands; it sends no request itself. */
export class AiinfraPanel extends ReactWidget {
  constructor(options: AiinfraPanel.IOptions) {
    super();
    this.model = options.model;
    this._commands = options.commands;
    this._ids = options.commandIDs;
    this.addClass('aiinfra-sidebar');
  }

  readonly model: PanelModel;

  render(): JSX.Element {
    return (
      <UseSignal signal={this.model.changed}>
        {() => <Private.PanelView model={this.model} commands={this._commands} ids={this._ids} />}
      </UseSignal>
    );
  }

  protected onAfterShow(msg: Message): void {
    super.onAfterShow(msg);
    this.model.visible = true;
    void this.model.poll.refresh(); // fresh data as soon as it is opened
  }

  protected onAfterHide(msg: Message): void {
    super.onAfterHide(msg);
    this.model.visible = false;
  }

  dispose(): void {
    this.model.dispose();
    super.dispose();
  }

  private _commands: CommandRegistry;
  private _ids: AiinfraPanel.ICommandIDs;
}

export namespace AiinfraPanel {
  export interface IOptions {
    model: PanelModel;
    commands: CommandRegistry;
    /** The commands behind the panel's buttons (index.ts passes its CommandIDs). */
    commandIDs: ICommandIDs;
  }

  export interface ICommandIDs {
    startCluster: string;
    scaleCluster: string;
    adaptCluster: string;
    stopCluster: string;
    openDashboard: string;
    insertConnect: string;
    runPipeline: string;
  }
}

namespace Private {
  type Props = { model: PanelModel; commands: CommandRegistry; ids: AiinfraPanel.ICommandIDs };

  function Bar(props: { percent: number | null; label: string }): JSX.Element {
    const pct = props.percent ?? 0;
    return (
      <div className="aiinfra-bar" title={props.label}>
        <div className="aiinfra-bar-fill" style={{ width: `${pct}%` }} />
        <span className="aiinfra-bar-label">{props.label}</span>
      </div>
    );
  }

  /** A card button: icon and label; the label hides while the card is narrow (style/base.css). */
  function Action(props: {
    kind: string;
    label: string;
    title: string;
    icon: LabIcon;
    disabled?: boolean;
    warn?: boolean;
    onClick: () => void;
  }): JSX.Element {
    return (
      <button
        className={`jp-mod-styled aiinfra-${props.kind}${props.warn ? ' jp-mod-warn' : ''}`}
        title={props.title}
        aria-label={props.label}
        disabled={props.disabled}
        onClick={props.onClick}
      >
        <props.icon.react tag="span" className="aiinfra-action-icon" />
        <span className="aiinfra-action-label">{props.label}</span>
      </button>
    );
  }

  /** A batch cluster's jobs (SLURM), as the server's live details give them. */
  function Jobs(props: { cluster: ICluster }): JSX.Element | null {
    const { jobs, queue, submit_errors: refused } = props.cluster;
    if (!jobs && !queue) {
      return null;
    }
    return (
      <div className="aiinfra-queue">
        <div className="aiinfra-dim aiinfra-queue-summary">jobs: {queue}</div>
        <ul className="aiinfra-jobs">
          {(jobs ?? []).map(j => (
            <li className={`aiinfra-job aiinfra-job-${j.state.toLowerCase()}`} key={j.job_id}>
              {jobLine(j)}
            </li>
          ))}
        </ul>
        <ErrorLine error={refused?.length ? `sbatch refused: ${refused[refused.length - 1]}` : undefined} />
      </div>
    );
  }

  function ErrorLine(props: { error?: string }): JSX.Element | null {
    return props.error ? <div className="aiinfra-error">{props.error}</div> : null;
  }

  function Devices(props: { model: PanelModel }): JSX.Element {
    const inv = props.model.devices.data;
    const metrics = props.model.metrics.data;
    if (inv && !inv.available) {
      return <div className="aiinfra-note">Devices not available: {inv.reason}</div>;
    }
    const gpus = metrics?.gpus ?? [];
    return (
      <div>
        <ErrorLine error={props.model.devices.error ?? props.model.metrics.error} />
        {inv && (
          <div className="aiinfra-host">
            <div>
              <b>{inv.host}</b> · {inv.cpu?.usable_cores ?? inv.cpu?.logical_cores} CPU cores ·{' '}
              {formatBytes(inv.memory?.total)} RAM
            </div>
            <div className="aiinfra-dim">{inv.cpu?.model}</div>
          </div>
        )}
        {gpus.length === 0 ? (
          <div className="aiinfra-note aiinfra-no-gpu">
            No GPU: {metrics?.reason ?? inv?.gpu_note ?? 'checking…'}
          </div>
        ) : (
          gpus.map(gpu => (
            <div className="aiinfra-gpu" key={gpu.index}>
              <div>
                GPU {gpu.index}: {gpu.name ?? gpu.error ?? ''}
                {gpu.temperature !== null && gpu.temperature !== undefined
                  ? ` · ${gpu.temperature}°C`
                  : ''}
              </div>
              <Bar
                percent={gpu.utilization ?? null}
                label={`util ${gpu.utilization ?? '?'}%`}
              />
              <Bar
                percent={memoryPercent(gpu)}
                label={`mem ${formatBytes(gpu.memory_used)} / ${formatBytes(gpu.memory_total)}`}
              />
            </div>
          ))
        )}
      </div>
    );
  }

  function Clusters(props: Props): JSX.Element {
    const { model, commands, ids } = props;
    const clusters = model.clusters.data;
    const run = (id: string, name: string) => () => void commands.execute(id, { name });
    return (
      <div>
        <button
          className="jp-mod-styled jp-mod-accept aiinfra-start"
          onClick={() => void commands.execute(ids.startCluster)}
        >
          New cluster…
        </button>
        <ErrorLine error={model.clusters.error} />
        {clusters && clusters.length === 0 && <div className="aiinfra-note">No clusters registered.</div>}
        {(clusters ?? []).map(c => {
          // A backend that does not manage its workers (an attached scheduler) refuses scale and adapt.
          const fixed = model.backendOf(c)?.manages_workers === false;
          return (
            <div className="aiinfra-cluster" data-name={c.name} key={c.name}>
              <div className="aiinfra-cluster-head">
                <b className="aiinfra-cluster-name">{c.name}</b>
                <span className={`aiinfra-status aiinfra-status-${c.status}`}>{c.status}</span>
                <span className="aiinfra-dim">
                  {c.backend} · {c.owner?.kind ?? '?'}
                </span>
              </div>
              <div className="aiinfra-cluster-summary">{clusterSummary(c)}</div>
              <Jobs cluster={c} />
              {model.busy.get(c.name) && <div className="aiinfra-note">{model.busy.get(c.name)}…</div>}
              <div className="aiinfra-actions">
                <Action
                  kind="dashboard"
                  label="Dashboard"
                  title="Open the Dask dashboard in a tab"
                  icon={tabIcon}
                  disabled={!c.dashboard_link}
                  onClick={run(ids.openDashboard, c.name)}
                />
                <Action
                  kind="connect"
                  label="Connect"
                  title="Insert the client code into the notebook"
                  icon={codeIcon}
                  onClick={run(ids.insertConnect, c.name)}
                />
                <Action
                  kind="scale"
                  label="Scale"
                  title="Set a fixed number of workers"
                  icon={usersIcon}
                  disabled={fixed}
                  onClick={run(ids.scaleCluster, c.name)}
                />
                <Action
                  kind="adapt"
                  label="Adapt"
                  title="Add and remove workers with the load, between a minimum and a maximum"
                  icon={refreshIcon}
                  disabled={fixed}
                  onClick={run(ids.adaptCluster, c.name)}
                />
                <Action
                  kind="stop"
                  label="Stop"
                  title="Stop the cluster and its workers"
                  icon={stopIcon}
                  warn
                  onClick={run(ids.stopCluster, c.name)}
                />
              </div>
            </div>
          );
        })}
      </div>
    );
  }

  function Pipelines(props: Props): JSX.Element {
    const { model, commands, ids } = props;
    const data = model.runs.data;
    if (data && !data.available) {
      return <div className="aiinfra-note">Pipelines not available: {data.reason}</div>;
    }
    const open = (path: string) => () => void commands.execute('docmanager:open', { path });
    return (
      <div>
        <button className="jp-mod-styled aiinfra-run" onClick={() => void commands.execute(ids.runPipeline)}>
          Run pipeline…
        </button>
        <ErrorLine error={model.runs.error} />
        {(data?.launches ?? [])
          .filter(l => l.status !== 'finished')
          .map(l => (
            <div className="aiinfra-launch" key={l.launch}>
              {l.pipeline.split('/').slice(-2).join('/')}: {l.status}
              {l.exit_code ? ` (exit ${l.exit_code}, log ${l.log})` : ''}
            </div>
          ))}
        {data && data.runs.length === 0 && <div className="aiinfra-note">No pipeline runs yet.</div>}
        {(data?.runs ?? []).slice(0, 10).map(r => (
          <details className="aiinfra-runinfo" key={`${r.folder}-${r.run_id}`}>
            <summary title={r.run_id}>
              <span className={`aiinfra-status aiinfra-status-${r.status}`}>{r.status ?? '?'}</span>
              <span className="aiinfra-run-pipeline">{r.pipeline ?? r.folder?.replace(/\/runs\/.*/, '') ?? ''}</span>
              <span className="aiinfra-dim aiinfra-run-id">{r.run_id}</span>
            </summary>
            {runSteps(r).map(step => {
              const path = stepNotebookPath(step);
              return (
                <div className="aiinfra-step" key={step.name}>
                  <span className={`aiinfra-status aiinfra-status-${step.status}`}>{step.status ?? '?'}</span>{' '}
                  {path ? (
                    <a href="#" onClick={open(path)}>
                      {step.name}
                    </a>
                  ) : (
                    step.name
                  )}
                  {typeof step.duration === 'number' ? ` · ${step.duration.toFixed(1)}s` : ''}
                </div>
              );
            })}
          </details>
        ))}
      </div>
    );
  }

  export function PanelView(props: Props): JSX.Element {
    const { model } = props;
    return (
      <div className="aiinfra-panel">
        <div className="aiinfra-title">
          <span>aiinfra</span>
          <button className="jp-mod-styled aiinfra-refresh" title="Refresh now" onClick={() => void model.poll.refresh()}>
            ⟳
          </button>
        </div>
        {model.extensionMissing && <div className="aiinfra-error aiinfra-missing">{model.extensionMissing}</div>}
        <h3 className="aiinfra-section">Devices</h3>
        <Devices model={model} />
        <h3 className="aiinfra-section">Clusters</h3>
        <Clusters {...props} />
        <h3 className="aiinfra-section">Pipelines</h3>
        <Pipelines {...props} />
      </div>
    );
  }
}
