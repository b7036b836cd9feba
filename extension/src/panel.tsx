/**
 * The sidebar: Devices, Clusters and Pipelines, refreshed by one poll that
 * backs off on failure and stands by while the panel is hidden.
 */

import { ReactWidget, UseSignal } from '@jupyterlab/apputils';
import { Message } from '@lumino/messaging';
import { CommandRegistry } from '@lumino/commands';
import { Poll } from '@lumino/polling';
import { ISignal, Signal } from '@lumino/signaling';
import * as React from 'react';

import { APIError, IRequester, requestAPI } from './api';
import {
  clusterSummary,
  formatBytes,
  ICluster,
  IGpuMetrics,
  IInventory,
  IRuns,
  memoryPercent,
  runSteps,
  stepNotebookPath
} from './model';

export const CommandIDs = {
  openPanel: 'aiinfra:open-panel',
  refresh: 'aiinfra:refresh',
  startCluster: 'aiinfra:start-cluster',
  scaleCluster: 'aiinfra:scale-cluster',
  stopCluster: 'aiinfra:stop-cluster',
  openDashboard: 'aiinfra:open-dashboard',
  insertConnect: 'aiinfra:insert-connect',
  runPipeline: 'aiinfra:run-pipeline'
};

type Section<T> = { data?: T; error?: string };

/** Everything the panel shows; one poll fills it. */
export class PanelModel {
  devices: Section<IInventory> = {};
  metrics: Section<IGpuMetrics> = {};
  clusters: Section<ICluster[]> = {};
  runs: Section<IRuns> = {};
  extensionMissing: string | null = null;
  busy = new Map<string, string>(); // cluster name -> what is being done
  visible = false; // set by the panel as it is shown and hidden
  readonly poll: Poll;
  private _changed = new Signal<this, void>(this);

  constructor(
    readonly requester: IRequester,
    intervalMs: number
  ) {
    this.poll = new Poll({
      factory: () => this.refresh(),
      frequency: { interval: intervalMs, backoff: true, max: 60000 },
      // Nobody looks at a hidden panel or a background tab: do not poll then.
      standby: () => !this.visible || 'when-hidden',
      name: 'aiinfra:panel'
    });
  }

  get changed(): ISignal<this, void> {
    return this._changed;
  }

  setInterval(intervalMs: number): void {
    this.poll.frequency = { interval: intervalMs, backoff: true, max: 60000 };
  }

  request<T>(path: string[], method = 'GET', body?: unknown): Promise<T> {
    return requestAPI<T>(this.requester, path, method, body);
  }

  /** One round of requests; rejects (so the poll backs off) when every one failed. */
  async refresh(): Promise<void> {
    const calls: Array<[keyof PanelModel, string[]]> = [
      ['devices', ['devices']],
      ['metrics', ['metrics', 'gpu']],
      ['clusters', ['clusters']],
      ['runs', ['pipelines', 'runs']]
    ];
    const results = await Promise.allSettled(calls.map(([, path]) => this.request<any>(path)));
    let failures = 0;
    this.extensionMissing = null;
    const sections = this as unknown as Record<string, Section<unknown>>;
    results.forEach((result, i) => {
      const key = calls[i][0];
      if (result.status === 'fulfilled') {
        const value = key === 'clusters' ? result.value.clusters : result.value;
        sections[key] = { data: value };
      } else {
        failures += 1;
        const error = result.reason as APIError;
        if (error.extensionMissing) {
          this.extensionMissing = error.message;
        }
        sections[key] = { data: sections[key].data, error: error.message ?? String(error) };
      }
    });
    this._changed.emit();
    if (failures === calls.length) {
      throw new Error('aiinfra: every request failed');
    }
  }

  setBusy(name: string, what: string | null): void {
    if (what) {
      this.busy.set(name, what);
    } else {
      this.busy.delete(name);
    }
    this._changed.emit();
  }

  dispose(): void {
    this.poll.dispose();
    Signal.clearData(this);
  }
}

function Bar(props: { percent: number | null; label: string }): JSX.Element {
  const pct = props.percent ?? 0;
  return (
    <div className="aiinfra-bar" title={props.label}>
      <div className="aiinfra-bar-fill" style={{ width: `${pct}%` }} />
      <span className="aiinfra-bar-label">{props.label}</span>
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

function Clusters(props: { model: PanelModel; commands: CommandRegistry }): JSX.Element {
  const { model, commands } = props;
  const clusters = model.clusters.data;
  const run = (id: string, name: string) => () => void commands.execute(id, { name });
  return (
    <div>
      <button
        className="jp-mod-styled jp-mod-accept aiinfra-start"
        onClick={() => void commands.execute(CommandIDs.startCluster)}
      >
        New cluster…
      </button>
      <ErrorLine error={model.clusters.error} />
      {clusters && clusters.length === 0 && (
        <div className="aiinfra-note">No clusters registered.</div>
      )}
      {(clusters ?? []).map(c => (
        <div className="aiinfra-cluster" data-name={c.name} key={c.name}>
          <div className="aiinfra-cluster-head">
            <b className="aiinfra-cluster-name">{c.name}</b>
            <span className={`aiinfra-status aiinfra-status-${c.status}`}>{c.status}</span>
            <span className="aiinfra-dim">
              {c.backend} · {c.owner?.kind ?? '?'}
            </span>
          </div>
          <div className="aiinfra-cluster-summary">{clusterSummary(c)}</div>
          {model.busy.get(c.name) && (
            <div className="aiinfra-note">{model.busy.get(c.name)}…</div>
          )}
          <div className="aiinfra-actions">
            <button
              className="jp-mod-styled aiinfra-dashboard"
              disabled={!c.dashboard_link}
              onClick={run(CommandIDs.openDashboard, c.name)}
            >
              Dashboard
            </button>
            <button className="jp-mod-styled aiinfra-connect" onClick={run(CommandIDs.insertConnect, c.name)}>
              Connect
            </button>
            <button className="jp-mod-styled aiinfra-scale" onClick={run(CommandIDs.scaleCluster, c.name)}>
              Scale
            </button>
            <button
              className="jp-mod-styled jp-mod-warn aiinfra-stop"
              onClick={run(CommandIDs.stopCluster, c.name)}
            >
              Stop
            </button>
          </div>
        </div>
      ))}
    </div>
  );
}

function Pipelines(props: { model: PanelModel; commands: CommandRegistry }): JSX.Element {
  const { model, commands } = props;
  const data = model.runs.data;
  if (data && !data.available) {
    return <div className="aiinfra-note">Pipelines not available: {data.reason}</div>;
  }
  const open = (path: string) => () => void commands.execute('docmanager:open', { path });
  return (
    <div>
      <button
        className="jp-mod-styled aiinfra-run"
        onClick={() => void commands.execute(CommandIDs.runPipeline)}
      >
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
          <summary>
            <span className={`aiinfra-status aiinfra-status-${r.status}`}>{r.status ?? '?'}</span>{' '}
            {r.pipeline ?? r.folder?.replace(/\/runs\/.*/, '') ?? ''} <span className="aiinfra-dim">{r.run_id}</span>
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

function PanelView(props: { model: PanelModel; commands: CommandRegistry }): JSX.Element {
  const { model } = props;
  return (
    <div className="aiinfra-panel">
      <div className="aiinfra-title">
        <span>aiinfra</span>
        <button
          className="jp-mod-styled aiinfra-refresh"
          title="Refresh now"
          onClick={() => void model.poll.refresh()}
        >
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

export class AiinfraPanel extends ReactWidget {
  constructor(
    readonly model: PanelModel,
    private _commands: CommandRegistry
  ) {
    super();
    this.addClass('aiinfra-sidebar');
  }

  render(): JSX.Element {
    return (
      <UseSignal signal={this.model.changed}>
        {() => <PanelView model={this.model} commands={this._commands} />}
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
}
