/**
 * The run view (main area): runs grouped by pipeline on the left, the chosen
 * run on the right: its DAG with live step states, per-step duration,
 * attempts, worker and devices, the failing cell's error inline, and buttons
 * to cancel it, re-run its failed steps and open executed notebooks (read-only).
 *
 * Like the sidebar it renders a model and runs commands; it sends no request itself.
 */

import { ReactWidget, UseSignal } from '@jupyterlab/apputils';
import { CommandRegistry } from '@lumino/commands';
import { Message } from '@lumino/messaging';
import * as React from 'react';

import { formatBytes } from '../model';
import {
  dagLayout,
  failedSteps,
  formatCost,
  formatSeconds,
  groupRuns,
  IRunRecord,
  isFullyCached,
  NODE_H,
  NODE_W,
  placement,
  RunsModel,
  stepDuration,
  steps
} from './runs';

export class RunsView extends ReactWidget {
  constructor(options: RunsView.IOptions) {
    super();
    this.model = options.model;
    this._commands = options.commands;
    this._ids = options.commandIDs;
    this.addClass('aiinfra-runs-view');
  }

  readonly model: RunsModel;

  render(): JSX.Element {
    return (
      <UseSignal signal={this.model.changed}>
        {() => <Private.View model={this.model} commands={this._commands} ids={this._ids} />}
      </UseSignal>
    );
  }

  protected onAfterShow(msg: Message): void {
    super.onAfterShow(msg);
    this.model.visible = true;
    void this.model.poll.refresh();
  }

  protected onAfterAttach(msg: Message): void {
    super.onAfterAttach(msg);
    this.model.visible = this.isVisible;
    void this.model.poll.refresh();
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
  private _ids: RunsView.ICommandIDs;
}

export namespace RunsView {
  export interface ICommandIDs {
    openExecuted: string;
    cancelRun: string;
    rerunFailed: string;
  }

  export interface IOptions {
    model: RunsModel;
    commands: CommandRegistry;
    commandIDs: ICommandIDs;
  }
}

namespace Private {
  type Props = { model: RunsModel; commands: CommandRegistry; ids: RunsView.ICommandIDs };

  function when(start: number | null | undefined): string {
    return typeof start === 'number' ? new Date(start * 1000).toLocaleString() : '';
  }

  function counts(run: IRunRecord): string {
    const by = new Map<string, number>();
    for (const s of steps(run)) {
      by.set(s.status ?? '?', (by.get(s.status ?? '?') ?? 0) + 1);
    }
    return [...by.entries()].map(([k, n]) => `${n} ${k}`).join(', ');
  }

  function Badge(props: { status?: string }): JSX.Element {
    const status = props.status ?? '?';
    return <span className={`aiinfra-status aiinfra-status-${status}`}>{status}</span>;
  }

  function List(props: Props): JSX.Element {
    const { model } = props;
    const groups = groupRuns(model.runs);
    return (
      <div className="aiinfra-runs-list">
        {groups.length === 0 && <div className="aiinfra-note">No pipeline runs yet.</div>}
        {groups.map(g => (
          <section className="aiinfra-runs-group" data-pipeline={g.pipeline} key={g.pipeline}>
            <div className="aiinfra-runs-group-head">
              <b>{g.name}</b> <span className="aiinfra-dim">{g.pipeline}</span>
            </div>
            {g.rows.map(row => {
              if (row.kind === 'run') {
                const r = row.run;
                return (
                  <div
                    className={`aiinfra-runs-row${model.selected === r.run_id ? ' aiinfra-mod-selected' : ''}`}
                    data-run-id={r.run_id}
                    key={r.run_id}
                    onClick={() => model.select(r.run_id)}
                  >
                    <Badge status={r.status} />
                    <span className="aiinfra-runs-when">{when(r.start)}</span>
                    <span className="aiinfra-dim">
                      {formatSeconds(r.duration)} · {counts(r)}
                    </span>
                  </div>
                );
              }
              const latest = row.runs[0];
              return (
                <div
                  className={`aiinfra-runs-row aiinfra-runs-cached${
                    row.runs.some(r => r.run_id === model.selected) ? ' aiinfra-mod-selected' : ''
                  }`}
                  data-run-id={latest.run_id}
                  data-count={row.runs.length}
                  key={`cached-${latest.run_id}`}
                  title={row.runs.map(r => r.run_id).join('\n')}
                  onClick={() => model.select(latest.run_id)}
                >
                  <Badge status="cached" />
                  <span className="aiinfra-dim">
                    {row.runs.length === 1 ? 'nothing changed' : `${row.runs.length} runs, nothing changed`} · last{' '}
                    {when(latest.start)}
                  </span>
                </div>
              );
            })}
          </section>
        ))}
      </div>
    );
  }

  function Dag(props: { run: IRunRecord }): JSX.Element {
    const layout = dagLayout(props.run);
    const at = new Map(layout.nodes.map(n => [n.name, n]));
    const pad = 4;
    return (
      <svg
        className="aiinfra-dag"
        width={layout.width + 2 * pad}
        height={layout.height + 2 * pad}
        viewBox={`${-pad} ${-pad} ${layout.width + 2 * pad} ${layout.height + 2 * pad}`}
      >
        {layout.edges.map(e => {
          const a = at.get(e.from)!;
          const b = at.get(e.to)!;
          const x1 = a.x + NODE_W;
          const y1 = a.y + NODE_H / 2;
          const x2 = b.x;
          const y2 = b.y + NODE_H / 2;
          const mid = (x1 + x2) / 2;
          return (
            <path
              className="aiinfra-dag-edge"
              key={`${e.from}->${e.to}`}
              d={`M${x1},${y1} C${mid},${y1} ${mid},${y2} ${x2},${y2}`}
            />
          );
        })}
        {layout.nodes.map(n => (
          <g
            className={`aiinfra-dag-node aiinfra-dag-${n.status}`}
            data-node={n.name}
            data-status={n.status}
            key={n.name}
            transform={`translate(${n.x},${n.y})`}
          >
            <title>{`${n.name}: ${n.status}`}</title>
            <rect width={NODE_W} height={NODE_H} rx={5} />
            <text x={8} y={NODE_H / 2 + 4}>
              {n.name.length > 20 ? `${n.name.slice(0, 19)}…` : n.name}
            </text>
          </g>
        ))}
      </svg>
    );
  }

  function Detail(props: Props): JSX.Element {
    const { model, commands, ids } = props;
    const run = model.run;
    const launch = model.launch;
    if (!run) {
      if (launch) {
        const failed = launch.status !== 'running' && !launch.run_id;
        return (
          <div className="aiinfra-run-detail" data-launch={launch.launch}>
            <div className="aiinfra-note">
              {failed
                ? `The run did not start (exit code ${launch.exit_code}); its log: ${launch.log ?? ''}`
                : `Starting ${launch.pipeline}…`}
            </div>
          </div>
        );
      }
      return (
        <div className="aiinfra-run-detail">
          <div className="aiinfra-note">Pick a run on the left.</div>
        </div>
      );
    }
    const now = Date.now() / 1000;
    const failed = failedSteps(run);
    const cached = isFullyCached(run);
    return (
      <div className="aiinfra-run-detail" data-run-id={run.run_id} data-status={run.status}>
        <div className="aiinfra-run-head">
          <b>{run.pipeline}</b> <Badge status={cached ? 'cached' : run.status} />
          <span className="aiinfra-dim">
            {' '}
            run {run.run_id} · {when(run.start)}
            {run.duration ? ` · ${formatSeconds(run.duration)}` : ''}
            {run.cost?.steps ? ` · ${formatCost(run.cost)}` : ''}
            {run.cluster ? ` · ${run.cluster.embedded ? 'temporary local cluster' : `cluster ${run.cluster.name}`}` : ''}
          </span>
        </div>
        {cached && <div className="aiinfra-note">Nothing changed: every step came from the cache.</div>}
        <div className="aiinfra-actions">
          {run.status === 'running' && (
            <button
              className="jp-mod-styled jp-mod-warn aiinfra-cancel-run"
              disabled={!model.cancellable(run)}
              title={model.cancellable(run) ? 'Stop this run' : 'Only runs started from this Jupyter server can be cancelled here'}
              onClick={() => void commands.execute(ids.cancelRun, { run_id: run.run_id })}
            >
              Cancel run
            </button>
          )}
          {failed.length > 0 && run.status !== 'running' && (
            <button
              className="jp-mod-styled aiinfra-rerun-failed"
              title={`Run again: ${failed.join(', ')}`}
              onClick={() => void commands.execute(ids.rerunFailed, { run_id: run.run_id })}
            >
              Re-run failed steps
            </button>
          )}
        </div>
        <Dag run={run} />
        <table className="aiinfra-steps">
          <thead>
            <tr>
              <th>step</th>
              <th>status</th>
              <th>duration</th>
              <th>attempts</th>
              <th>worker · devices</th>
              <th>peak memory</th>
              <th title="What the step held while it ran: GPU-hours and core-hours (run.json has all figures)">cost</th>
              <th>notebook</th>
            </tr>
          </thead>
          <tbody>
            {steps(run).map(step => {
              const failure = step.notebook_path ? model.failures.get(step.notebook_path) : null;
              return (
                <React.Fragment key={step.name}>
                  <tr className="aiinfra-step-row" data-step={step.name} data-status={step.status}>
                    <td>{step.name}</td>
                    <td title={step.reason ?? ''}>
                      <Badge status={step.status} />
                    </td>
                    <td className="aiinfra-step-duration">{formatSeconds(stepDuration(step, now))}</td>
                    <td className="aiinfra-step-attempts">{step.attempts ?? 0}</td>
                    <td className="aiinfra-step-where">{placement(step)}</td>
                    <td>{step.peak_rss ? formatBytes(step.peak_rss) : ''}</td>
                    <td className="aiinfra-step-cost">{formatCost(step.cost)}</td>
                    <td>
                      {step.notebook_path && step.status !== 'pending' && step.status !== 'skipped' && (
                        <button
                          className="jp-mod-styled aiinfra-open-executed"
                          title={`Open ${step.notebook_path} read-only (no kernel)`}
                          onClick={() => void commands.execute(ids.openExecuted, { path: step.notebook_path! })}
                        >
                          open
                        </button>
                      )}
                    </td>
                  </tr>
                  {step.status === 'failed' && (
                    <tr className="aiinfra-step-failure" data-step={step.name}>
                      <td colSpan={8}>
                        <div className="aiinfra-error">{step.error ?? 'failed'}</div>
                        {failure && (
                          <div className="aiinfra-cell-failure">
                            <pre className="aiinfra-cell-source">{failure.source}</pre>
                            <pre className="aiinfra-cell-traceback">{failure.traceback}</pre>
                          </div>
                        )}
                      </td>
                    </tr>
                  )}
                </React.Fragment>
              );
            })}
          </tbody>
        </table>
      </div>
    );
  }

  export function View(props: Props): JSX.Element {
    const { model } = props;
    return (
      <div className="aiinfra-runs">
        {model.error && <div className="aiinfra-error">{model.error}</div>}
        {!model.available && <div className="aiinfra-note">Pipelines not available: {model.reason}</div>}
        <List {...props} />
        <Detail {...props} />
      </div>
    );
  }
}
