/**
 * The sidebar: Devices (with the GPU/host charts), Clusters (cards with their
 * dashboard plots, draggable into a notebook) and Pipelines. Data is pushed
 * over the events socket; a poll that backs off covers the time it is down.
 */

import { ReactWidget, UseSignal } from '@jupyterlab/apputils';
import { ITranslator } from '@jupyterlab/translation';
import { codeIcon, LabIcon, refreshIcon, stopIcon, tabIcon, usersIcon } from '@jupyterlab/ui-components';
import { CommandRegistry } from '@lumino/commands';
import { MimeData } from '@lumino/coreutils';
import { Drag } from '@lumino/dragdrop';
import { Message } from '@lumino/messaging';
import * as React from 'react';

import { CHARTS } from './charts';
import {
  clusterSummary,
  connectCode,
  costLine,
  formatBytes,
  ICluster,
  idleLine,
  jobLine,
  memoryPercent,
  PanelModel
} from './model';
import { PipelineSection } from './pipelines/sidebar';

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
    if (!this.model.pushing) {
      void this.model.refreshNow(); // fresh data as soon as it is opened
    }
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
    /** The lab's translator (strings in the 'aiinfra' domain); none: untranslated. */
    translator?: ITranslator;
  }

  export interface ICommandIDs {
    startCluster: string;
    scaleCluster: string;
    adaptCluster: string;
    stopCluster: string;
    openDashboard: string;
    openPane: string;
    openChart: string;
    insertConnect: string;
    runPipeline: string;
  }

  /** The notebook's own cell-drag mime type: a notebook inserts these cells where they drop. */
  export const CELL_MIME = 'application/vnd.jupyter.cells';

  /** What dragging a card carries: a code cell for notebooks, plain text for editors and consoles. */
  export function dragData(name: string): MimeData {
    const code = connectCode(name);
    const data = new MimeData();
    data.setData(CELL_MIME, [{ cell_type: 'code', source: code, outputs: [], execution_count: null, metadata: {} }]);
    data.setData('text/plain', code);
    return data;
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

  /** What the cluster used so far and, with an idle timeout, when it stops itself. */
  function Cost(props: { cluster: ICluster }): JSX.Element | null {
    const used = costLine(props.cluster.cost);
    const idle = idleLine(props.cluster.cost);
    if (!used && !idle) {
      return null;
    }
    return (
      <>
        {used && (
          <div className="aiinfra-dim aiinfra-cost" title="Used so far (measured on the scheduler)">
            used: {used}
          </div>
        )}
        {idle && (
          <div className="aiinfra-dim aiinfra-idle" title="The cluster stops itself after its idle timeout">
            {idle}
          </div>
        )}
      </>
    );
  }

  function ErrorLine(props: { error?: string }): JSX.Element | null {
    return props.error ? <div className="aiinfra-error">{props.error}</div> : null;
  }

  function Charts(props: Props): JSX.Element {
    return (
      <div className="aiinfra-charts" title="Open a chart as its own panel">
        {CHARTS.map(c => (
          <button
            key={c.kind}
            className="jp-mod-styled aiinfra-chart-button"
            data-chart={c.kind}
            onClick={() => void props.commands.execute(props.ids.openChart, { chart: c.kind })}
          >
            {c.label.replace(' Throughput', '').replace('Machine Resources', 'Host')}
          </button>
        ))}
      </div>
    );
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
          <div className="aiinfra-note aiinfra-no-gpu">{metrics?.reason ?? inv?.gpu_note ?? 'Looking for GPUs…'}</div>
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

  /** Start a lumino drag once the mouse moved a few pixels with the button down (not on buttons). */
  function startDrag(event: React.MouseEvent, cluster: ICluster): void {
    const target = event.target as HTMLElement;
    if (event.button !== 0 || target.closest('button, summary, a, input')) {
      return;
    }
    const card = event.currentTarget as HTMLElement;
    const x0 = event.clientX;
    const y0 = event.clientY;
    const move = (e: MouseEvent) => {
      if (Math.abs(e.clientX - x0) + Math.abs(e.clientY - y0) < 5) {
        return;
      }
      stop();
      const image = card.cloneNode(true) as HTMLElement;
      image.classList.add('aiinfra-drag-image');
      const drag = new Drag({
        mimeData: AiinfraPanel.dragData(cluster.name),
        dragImage: image,
        proposedAction: 'copy',
        supportedActions: 'copy',
        source: card
      });
      void drag.start(e.clientX, e.clientY);
    };
    const stop = () => {
      document.removeEventListener('mousemove', move, true);
      document.removeEventListener('mouseup', stop, true);
    };
    document.addEventListener('mousemove', move, true);
    document.addEventListener('mouseup', stop, true);
  }

  /** The dashboard's individual plots, listed when opened; each opens as its own panel. */
  function Panes(props: Props & { cluster: ICluster }): JSX.Element {
    const { model, commands, ids, cluster } = props;
    const loaded = model.plots.get(cluster.name);
    return (
      <details
        className="aiinfra-panes"
        onToggle={event => {
          if ((event.currentTarget as HTMLDetailsElement).open && !model.plots.get(cluster.name)?.data) {
            void model.loadPlots(cluster.name);
          }
        }}
      >
        <summary>Dashboard plots</summary>
        {loaded?.error && <div className="aiinfra-error">{loaded.error}</div>}
        {!loaded && <div className="aiinfra-note">Asking the dashboard…</div>}
        <div className="aiinfra-pane-list">
          {(loaded?.data ?? []).map(plot => (
            <button
              key={plot.path}
              className="jp-mod-styled aiinfra-pane-button"
              data-plot={plot.path}
              title={`Open ${plot.label} of ${cluster.name} as its own panel`}
              onClick={() => void commands.execute(ids.openPane, { name: cluster.name, plot: plot.path, label: plot.label })}
            >
              {plot.label}
            </button>
          ))}
        </div>
      </details>
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
            <div
              className="aiinfra-cluster"
              data-name={c.name}
              key={c.name}
              title="Drag into a notebook to insert the code that connects to this cluster"
              onMouseDown={event => startDrag(event, c)}
            >
              <div className="aiinfra-cluster-head">
                <b className="aiinfra-cluster-name">{c.name}</b>
                <span className={`aiinfra-status aiinfra-status-${c.status}`}>{c.status}</span>
                <span className="aiinfra-dim">
                  {c.backend} · {c.owner?.kind ?? '?'}
                </span>
              </div>
              <div className="aiinfra-cluster-summary">{clusterSummary(c)}</div>
              <Cost cluster={c} />
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
              {c.dashboard_link && c.status === 'running' && <Panes {...props} cluster={c} />}
            </div>
          );
        })}
      </div>
    );
  }

  function Pipelines(props: Props): JSX.Element {
    // src/pipelines/sidebar.tsx: runs by their start time, a failed launch's log, scheduled runs.
    return <PipelineSection model={props.model} commands={props.commands} ids={props.ids} />;
  }

  export function PanelView(props: Props): JSX.Element {
    const { model } = props;
    return (
      <div className="aiinfra-panel">
        <div className="aiinfra-title">
          <span>aiinfra</span>
          <span
            className={`aiinfra-live aiinfra-live-${model.pushing ? 'on' : 'off'}`}
            title={model.pushing ? 'Changes are pushed by the server as they happen' : 'Live updates not connected: polling'}
          >
            {model.pushing ? 'live' : 'polling'}
          </span>
          <button className="jp-mod-styled aiinfra-refresh" title="Refresh now" onClick={() => void model.refreshNow()}>
            ⟳
          </button>
        </div>
        {model.extensionMissing && <div className="aiinfra-error aiinfra-missing">{model.extensionMissing}</div>}
        <h3 className="aiinfra-section">Devices</h3>
        <Devices model={model} />
        <Charts {...props} />
        <h3 className="aiinfra-section">Clusters</h3>
        <Clusters {...props} />
        <h3 className="aiinfra-section">Pipelines</h3>
        <Pipelines {...props} />
      </div>
    );
  }
}
