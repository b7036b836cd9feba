/**
 * The sidebar: Devices (with the GPU/host charts), Clusters (cards with their
 * dashboard plots, draggable into a notebook) and Pipelines. Data is pushed
 * over the events socket; a poll that backs off covers the time it is down.
 * Every string goes through the lab's translator (i18n.ts).
 */

import { ReactWidget, UseSignal } from '@jupyterlab/apputils';
import { ITranslator } from '@jupyterlab/translation';
import { codeIcon, LabIcon, refreshIcon, stopIcon, tabIcon, usersIcon } from '@jupyterlab/ui-components';
import { CommandRegistry } from '@lumino/commands';
import { MimeData } from '@lumino/coreutils';
import { Drag } from '@lumino/dragdrop';
import { Message } from '@lumino/messaging';
import * as React from 'react';

import { chartLabel, CHARTS, HOSTS_CHART } from './charts';
import { clusterWarnings, efficiencyParts } from './efficiency';
import { bundle, TranslationBundle } from './i18n';
import {
  clusterParts,
  connectCode,
  costParts,
  formatBytes,
  ICluster,
  idleLine,
  jobLine,
  memoryPercent,
  PanelModel,
  statusLabel
} from './model';
import { PipelineSection } from './pipelines/sidebar';
import { filterPlots, groupPlots, IPlot, PlotGroup } from './plots';

/** The sidebar widget: it renders the model and runs commands; it sends no request itself. */
export class AiinfraPanel extends ReactWidget {
  constructor(options: AiinfraPanel.IOptions) {
    super();
    this.model = options.model;
    this._commands = options.commands;
    this._ids = options.commandIDs;
    this._trans = bundle(options.translator);
    this.addClass('aiinfra-sidebar');
  }

  readonly model: PanelModel;

  render(): JSX.Element {
    return (
      <UseSignal signal={this.model.changed}>
        {() => <Private.PanelView model={this.model} commands={this._commands} ids={this._ids} trans={this._trans} />}
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
  private _trans: TranslationBundle;
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
    openRuns?: string;
    openExecuted?: string;
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
  type Props = {
    model: PanelModel;
    commands: CommandRegistry;
    ids: AiinfraPanel.ICommandIDs;
    trans: TranslationBundle;
  };

  function Bar(props: { percent: number | null; label: string }): JSX.Element {
    const pct = props.percent ?? 0;
    return (
      <div className="aiinfra-bar" title={props.label}>
        <div className="aiinfra-bar-fill" style={{ width: `${pct}%` }} />
        <span className="aiinfra-bar-label">{props.label}</span>
      </div>
    );
  }

  /** A card button: icon and a visible label (the row wraps rather than hiding labels). */
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
        disabled={props.disabled}
        onClick={props.onClick}
      >
        <props.icon.react tag="span" className="aiinfra-action-icon" aria-hidden="true" />
        <span className="aiinfra-action-label">{props.label}</span>
      </button>
    );
  }

  /** A batch cluster's jobs (SLURM), as the server's live details give them. */
  function Jobs(props: { cluster: ICluster; trans: TranslationBundle }): JSX.Element | null {
    const { trans } = props;
    const { jobs, queue, submit_errors: refused } = props.cluster;
    if (!jobs && !queue) {
      return null;
    }
    return (
      <div className="aiinfra-queue">
        <div className="aiinfra-dim aiinfra-queue-summary">{trans.__('jobs: %1', queue ?? '')}</div>
        <ul className="aiinfra-jobs">
          {(jobs ?? []).map(j => (
            <li className={`aiinfra-job aiinfra-job-${j.state.toLowerCase()}`} key={j.job_id}>
              {jobLine(j, trans)}
            </li>
          ))}
        </ul>
        <ErrorLine
          error={refused?.length ? trans.__('sbatch refused: %1', refused[refused.length - 1]) : undefined}
        />
      </div>
    );
  }

  /** What the cluster used so far (each figure with its unit) and when it stops itself. */
  function Cost(props: { cluster: ICluster; trans: TranslationBundle }): JSX.Element | null {
    const { cluster, trans } = props;
    const used = costParts(cluster.cost, (cluster.gpus ?? []).length > 0, trans);
    const idle = idleLine(cluster.cost, undefined, trans);
    if (!used && !idle) {
      return null;
    }
    return (
      <>
        {used && (
          <div className="aiinfra-dim aiinfra-cost" title={trans.__('Used so far (measured on the scheduler)')}>
            <span className="aiinfra-cost-label">{trans.__('used:')} </span>
            {used.map((part, i) => (
              <span className="aiinfra-cost-part" key={part}>
                {part}
                {i < used.length - 1 ? ' · ' : ''}
              </span>
            ))}
          </div>
        )}
        {idle && (
          <div
            className="aiinfra-dim aiinfra-idle"
            title={trans.__('The cluster stops itself after its idle timeout')}
          >
            {idle}
          </div>
        )}
      </>
    );
  }

  /**
   * Used against held (issue 28): `CPU 42% of 1.2 core-h · GPU 7% of 2.0 GPU-h · peak memory
   * 3.1 GiB of 16 GiB`, each figure whole, on its own line under the usage.
   */
  function Efficiency(props: { cluster: ICluster; trans: TranslationBundle }): JSX.Element | null {
    const { trans } = props;
    const parts = efficiencyParts(props.cluster.cost, trans);
    if (!parts) {
      return null;
    }
    return (
      <div
        className="aiinfra-dim aiinfra-efficiency"
        title={trans.__('Used against held: measured on the workers by their sampler')}
      >
        <span className="aiinfra-efficiency-label">{trans.__('efficiency:')} </span>
        {parts.map((part, i) => (
          <span className="aiinfra-efficiency-part" key={part}>
            {part}
            {i < parts.length - 1 ? ' · ' : ''}
          </span>
        ))}
      </div>
    );
  }

  /** The cluster's warnings (held GPUs idle past the waste window, environment drift), one a line. */
  function Warnings(props: { cluster: ICluster; trans: TranslationBundle }): JSX.Element | null {
    const warnings = clusterWarnings(props.cluster as ICluster & { warnings?: unknown });
    if (warnings.length === 0) {
      return null;
    }
    return (
      <ul className="aiinfra-warnings" aria-label={props.trans.__('Warnings about %1', props.cluster.name)}>
        {warnings.map(w => (
          <li className="aiinfra-warning" key={w}>
            <span className="aiinfra-warning-label">{props.trans.__('warning:')}</span> {w}
          </li>
        ))}
      </ul>
    );
  }

  function ErrorLine(props: { error?: string }): JSX.Element | null {
    return props.error ? <div className="aiinfra-error">{props.error}</div> : null;
  }

  /**
   * The charts: of this machine (the host chart always, the GPU charts only where the
   * server's sampler reports GPUs; otherwise the note above says why there are none),
   * or of a running cluster (every host and GPU, from its workers' sampler). Each opens
   * as its own panel through the one chart command.
   */
  function Charts(props: Props): JSX.Element {
    const { model, trans } = props;
    const [source, setSource] = React.useState('');
    const clusters = (model.clusters.data ?? []).filter(c => c.status === 'running');
    const cluster = clusters.some(c => c.name === source) ? source : ''; // a stopped one: this machine
    const hasGpus = (model.metrics.data?.gpus ?? []).length > 0;
    const open = (args: { chart: string; cluster?: string }) => void props.commands.execute(props.ids.openChart, args);
    return (
      <div className="aiinfra-charts-box">
        <label className="aiinfra-chart-source">
          <span className="aiinfra-chart-source-label">{trans.__('Charts of')}</span>
          <select
            className="jp-mod-styled"
            value={cluster}
            title={trans.__('Chart this machine, or every host and GPU of a cluster')}
            onChange={event => setSource(event.target.value)}
          >
            <option value="">{trans.__('this machine')}</option>
            {clusters.map(c => (
              <option value={c.name} key={c.name}>
                {trans.__('cluster %1', c.name)}
              </option>
            ))}
          </select>
        </label>
        <div className="aiinfra-charts" title={trans.__('Open a chart as its own panel')}>
          {cluster ? (
            <button
              className="jp-mod-styled aiinfra-chart-button"
              data-chart={HOSTS_CHART}
              data-cluster={cluster}
              title={trans.__('Every host and GPU of %1; click a GPU to enlarge it', cluster)}
              onClick={() => open({ chart: HOSTS_CHART, cluster })}
            >
              {chartLabel(HOSTS_CHART, trans, true)}
            </button>
          ) : (
            CHARTS.filter(c => !c.gpu || hasGpus).map(c => (
              <button
                key={c.kind}
                className="jp-mod-styled aiinfra-chart-button"
                data-chart={c.kind}
                onClick={() => open({ chart: c.kind })}
              >
                {chartLabel(c.kind, trans, true)}
              </button>
            ))
          )}
        </div>
      </div>
    );
  }

  function Devices(props: { model: PanelModel; trans: TranslationBundle }): JSX.Element {
    const { trans } = props;
    const inv = props.model.devices.data;
    const metrics = props.model.metrics.data;
    if (inv && !inv.available) {
      return <div className="aiinfra-note">{trans.__('Devices not available: %1', inv.reason ?? '')}</div>;
    }
    const gpus = metrics?.gpus ?? [];
    const cores = inv?.cpu?.usable_cores ?? inv?.cpu?.logical_cores;
    return (
      <div>
        <ErrorLine error={props.model.devices.error ?? props.model.metrics.error} />
        {inv && (
          <div className="aiinfra-host">
            <div>
              <b>{inv.host}</b> · {trans._n('%1 CPU core', '%1 CPU cores', cores ?? 0)} ·{' '}
              {trans.__('%1 RAM', formatBytes(inv.memory?.total))}
            </div>
            <div className="aiinfra-dim">{inv.cpu?.model}</div>
          </div>
        )}
        {gpus.length === 0 ? (
          <div className="aiinfra-note aiinfra-no-gpu">
            {metrics?.reason ?? inv?.gpu_note ?? trans.__('Looking for GPUs…')}
          </div>
        ) : (
          gpus.map(gpu => (
            <div className="aiinfra-gpu" key={gpu.index}>
              <div>
                {trans.__('GPU %1: %2', gpu.index, gpu.name ?? gpu.error ?? '')}
                {gpu.temperature !== null && gpu.temperature !== undefined ? ` · ${gpu.temperature}°C` : ''}
              </div>
              <Bar
                percent={gpu.utilization ?? null}
                label={trans.__('utilization %1%', gpu.utilization ?? '?')}
              />
              <Bar
                percent={memoryPercent(gpu)}
                label={trans.__('memory %1 of %2', formatBytes(gpu.memory_used), formatBytes(gpu.memory_total))}
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

  /** The heading of a group of dashboard plots. */
  export function groupLabel(group: PlotGroup, trans: TranslationBundle): string {
    switch (group) {
      case 'tasks':
        return trans.__('Tasks');
      case 'workers':
        return trans.__('Workers');
      case 'memory':
        return trans.__('Memory');
      case 'network':
        return trans.__('Network');
      case 'gpu':
        return trans.__('GPU');
      default:
        return trans.__('Other');
    }
  }

  /**
   * The dashboard's individual plots, collapsed until opened: grouped, with a filter,
   * whole titles, in a list bounded in height (it scrolls inside the card). Each opens
   * as its own panel. Asked again at every opening (workers with GPUs may have joined).
   */
  function Panes(props: Props & { cluster: ICluster }): JSX.Element {
    const { model, commands, ids, cluster, trans } = props;
    const [query, setQuery] = React.useState('');
    const loaded = model.plots.get(cluster.name);
    const list = loaded?.data;
    const label = (group: PlotGroup) => groupLabel(group, trans);
    const shown = list ? filterPlots(list.plots, query, label) : [];
    const button = (plot: IPlot) => (
      <button
        key={plot.path}
        className="jp-mod-styled aiinfra-pane-button"
        data-plot={plot.path}
        title={trans.__('Open %1 of %2 as its own panel', plot.label, cluster.name)}
        onClick={() => void commands.execute(ids.openPane, { name: cluster.name, plot: plot.path, label: plot.label })}
      >
        {plot.label}
      </button>
    );
    return (
      <details
        className="aiinfra-panes"
        onToggle={event => {
          if ((event.currentTarget as HTMLDetailsElement).open) {
            void model.loadPlots(cluster.name);
          }
        }}
      >
        <summary>
          {list ? trans.__('Dashboard plots (%1)', list.plots.length) : trans.__('Dashboard plots')}
        </summary>
        {loaded?.error && <div className="aiinfra-error">{loaded.error}</div>}
        {!loaded && <div className="aiinfra-note">{trans.__('Asking the dashboard…')}</div>}
        {list && (
          <div className="aiinfra-plots">
            <input
              type="search"
              className="jp-mod-styled aiinfra-plot-filter"
              placeholder={trans.__('Filter, e.g. memory')}
              aria-label={trans.__('Filter the dashboard plots of %1', cluster.name)}
              value={query}
              onChange={e => setQuery(e.target.value)}
            />
            <div className="aiinfra-plot-groups">
              {groupPlots(shown).map(({ group, plots }) => (
                <section className="aiinfra-plot-group" data-group={group} key={group}>
                  <h4 className="aiinfra-plot-group-title">{label(group)}</h4>
                  <div className="aiinfra-pane-list">{plots.map(button)}</div>
                </section>
              ))}
              {shown.length === 0 && (
                <div className="aiinfra-note aiinfra-plots-none">
                  {list.plots.length
                    ? trans.__('No plot matches “%1”.', query)
                    : trans.__('The dashboard lists no plots.')}
                </div>
              )}
            </div>
            {list.hidden.length > 0 && (
              <div className="aiinfra-note aiinfra-plots-hidden" data-hidden={list.hidden.length}>
                {trans._n(
                  '%1 GPU plot not offered: no worker of %2 reports a GPU.',
                  '%1 GPU plots not offered: no worker of %2 reports a GPU.',
                  list.hidden.length,
                  cluster.name
                )}
              </div>
            )}
          </div>
        )}
      </details>
    );
  }

  /** Who started a cluster, in words (the registry's owner kinds; unknown ones as they are). */
  function ownerLabel(kind: string | undefined, trans: TranslationBundle): string {
    switch (kind) {
      case 'kernel':
        return trans.__('kernel');
      case 'server':
        return trans.__('server');
      case 'cli':
        return trans.__('cli');
      case 'external':
        return trans.__('external');
      case 'gateway':
        return trans.__('gateway');
      default:
        return kind ?? '?';
    }
  }

  function Clusters(props: Props): JSX.Element {
    const { model, commands, ids, trans } = props;
    const clusters = model.clusters.data;
    const run = (id: string, name: string) => () => void commands.execute(id, { name });
    return (
      <div>
        <button
          className="jp-mod-styled jp-mod-accept aiinfra-start"
          onClick={() => void commands.execute(ids.startCluster)}
        >
          {trans.__('New cluster…')}
        </button>
        <ErrorLine error={model.clusters.error} />
        {clusters && clusters.length === 0 && (
          <div className="aiinfra-note">{trans.__('No clusters registered.')}</div>
        )}
        {(clusters ?? []).map(c => {
          // A backend that does not manage its workers (an attached scheduler) refuses scale and adapt.
          const fixed = model.backendOf(c)?.manages_workers === false;
          const owner = ownerLabel(c.owner?.kind, trans);
          return (
            <div
              className="aiinfra-cluster"
              data-name={c.name}
              key={c.name}
              title={trans.__('Drag into a notebook to insert the code that connects to this cluster')}
              onMouseDown={event => startDrag(event, c)}
            >
              <div className="aiinfra-cluster-head">
                <b className="aiinfra-cluster-name">{c.name}</b>
                <span className={`aiinfra-status aiinfra-status-${c.status}`}>{statusLabel(c.status, trans)}</span>
                <span
                  className="aiinfra-dim"
                  title={trans.__('backend %1, started by: %2', c.backend ?? '?', owner)}
                >
                  {c.backend} · {owner}
                </span>
              </div>
              <div className="aiinfra-cluster-summary">
                {clusterParts(c, trans).map((part, i, all) => (
                  <span className="aiinfra-summary-part" key={i}>
                    {part}
                    {i < all.length - 1 ? ' · ' : ''}
                  </span>
                ))}
              </div>
              <Cost cluster={c} trans={trans} />
              <Efficiency cluster={c} trans={trans} />
              <Warnings cluster={c} trans={trans} />
              <Jobs cluster={c} trans={trans} />
              {model.busy.get(c.name) && <div className="aiinfra-note">{model.busy.get(c.name)}…</div>}
              <div className="aiinfra-actions">
                <Action
                  kind="dashboard"
                  label={trans.__('Dashboard')}
                  title={trans.__('Open the Dask dashboard in a tab')}
                  icon={tabIcon}
                  disabled={!c.dashboard_link}
                  onClick={run(ids.openDashboard, c.name)}
                />
                <Action
                  kind="connect"
                  label={trans.__('Connect')}
                  title={trans.__('Insert the client code into the notebook')}
                  icon={codeIcon}
                  onClick={run(ids.insertConnect, c.name)}
                />
                <Action
                  kind="scale"
                  label={trans.__('Scale')}
                  title={trans.__('Set a fixed number of workers')}
                  icon={usersIcon}
                  disabled={fixed}
                  onClick={run(ids.scaleCluster, c.name)}
                />
                <Action
                  kind="adapt"
                  label={trans.__('Adapt')}
                  title={trans.__('Add and remove workers with the load, between a minimum and a maximum')}
                  icon={refreshIcon}
                  disabled={fixed}
                  onClick={run(ids.adaptCluster, c.name)}
                />
                <Action
                  kind="stop"
                  label={trans.__('Stop')}
                  title={trans.__('Stop the cluster and its workers')}
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
    return <PipelineSection model={props.model} commands={props.commands} ids={props.ids} trans={props.trans} />;
  }

  export function PanelView(props: Props): JSX.Element {
    const { model, trans } = props;
    return (
      <div className="aiinfra-panel">
        <div className="aiinfra-title">
          <span>aiinfra</span>
          <span
            className={`aiinfra-live aiinfra-live-${model.pushing ? 'on' : 'off'}`}
            title={
              model.pushing
                ? trans.__('Changes are pushed by the server as they happen')
                : trans.__('Live updates not connected: polling')
            }
          >
            {model.pushing ? trans.__('live') : trans.__('polling')}
          </span>
          <button
            className="jp-mod-styled aiinfra-refresh"
            title={trans.__('Refresh now')}
            aria-label={trans.__('Refresh now')}
            onClick={() => void model.refreshNow()}
          >
            ⟳
          </button>
        </div>
        {model.extensionMissing && <div className="aiinfra-error aiinfra-missing">{model.extensionMissing}</div>}
        <h3 className="aiinfra-section">{trans.__('Devices')}</h3>
        <Devices model={model} trans={trans} />
        <Charts {...props} />
        <h3 className="aiinfra-section">{trans.__('Clusters')}</h3>
        <Clusters {...props} />
        <h3 className="aiinfra-section">{trans.__('Pipelines')}</h3>
        <Pipelines {...props} />
      </div>
    );
  }
}
