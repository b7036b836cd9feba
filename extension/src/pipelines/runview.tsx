/**
 * The run view (main area): runs grouped by pipeline on the left, listed by
 * their start time, the chosen run on the right: its DAG (edges with arrows,
 * each step box with "Run from here") with live step states, per-step
 * duration, attempts, host and worker, cost in units a person reads, the
 * failing cell's error inline, and buttons to cancel it, resume it, re-run its
 * failed steps and open executed notebooks (read-only). A run a schedule
 * started says so; a launch that never became a run links to its log.
 *
 * Like the sidebar it renders a model and runs commands; it sends no request
 * itself (the launch log is read through the model).
 */

import { ReactWidget, UseSignal } from '@jupyterlab/apputils';
import { ITranslator, TranslationBundle } from '@jupyterlab/translation';
import { CommandRegistry } from '@lumino/commands';
import { Message } from '@lumino/messaging';
import * as React from 'react';

import { asksForChange, efficiencyParts, peakMemory, runSuggestions, stepEfficiency, stepEfficiencyTitle } from '../efficiency';
import { formatBytes } from '../model';
import { bundle } from './i18n';
import {
  canResume,
  costTitle,
  dagLayout,
  failedSteps,
  formatAmount,
  formatCost,
  formatSeconds,
  groupRuns,
  ILaunchLog,
  ILaunchRecord,
  IRunRecord,
  isFullyCached,
  NODE_H,
  NODE_W,
  pipelinePath,
  placement,
  RunsModel,
  scheduleOf,
  sourcePath,
  statusLabel,
  stepDuration,
  steps
} from './runs';

export class RunsView extends ReactWidget {
  constructor(options: RunsView.IOptions) {
    super();
    this.model = options.model;
    this._commands = options.commands;
    this._ids = options.commandIDs;
    this._trans = bundle(options.translator);
    this.addClass('aiinfra-runs-view');
  }

  readonly model: RunsModel;

  render(): JSX.Element {
    return (
      <UseSignal signal={this.model.changed}>
        {() => <Private.View model={this.model} commands={this._commands} ids={this._ids} trans={this._trans} />}
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
  private _trans: TranslationBundle;
}

export namespace RunsView {
  export interface ICommandIDs {
    openExecuted: string;
    cancelRun: string;
    rerunFailed: string;
    /** `{run_id}`: POST the run again with `resume: true`. */
    resumeRun: string;
    /** `{run_id, step}`: POST the run again with `from: STEP`. */
    runFrom: string;
  }

  export interface IOptions {
    model: RunsModel;
    commands: CommandRegistry;
    commandIDs: ICommandIDs;
    translator?: ITranslator;
  }
}

let arrows = 0; // marker ids are document-wide: one per DAG drawn

namespace Private {
  type Props = {
    model: RunsModel;
    commands: CommandRegistry;
    ids: RunsView.ICommandIDs;
    trans: TranslationBundle;
  };

  function when(start: number | null | undefined): string {
    return typeof start === 'number'
      ? new Date(start * 1000).toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' })
      : '';
  }

  function counts(run: IRunRecord, trans: TranslationBundle): string {
    const by = new Map<string, number>();
    for (const s of steps(run)) {
      by.set(s.status ?? '?', (by.get(s.status ?? '?') ?? 0) + 1);
    }
    return [...by.entries()].map(([k, n]) => `${n} ${statusLabel(k, trans)}`).join(', ');
  }

  function Badge(props: { status?: string; trans: TranslationBundle }): JSX.Element {
    const status = props.status ?? '?';
    return (
      <span className={`aiinfra-status aiinfra-status-${status}`} data-status={status}>
        {statusLabel(status, props.trans)}
      </span>
    );
  }

  function Scheduled(props: { run: IRunRecord; trans: TranslationBundle; long?: boolean }): JSX.Element | null {
    const schedule = scheduleOf(props.run);
    if (!schedule) {
      return null;
    }
    const { trans } = props;
    return (
      <span
        className="aiinfra-scheduled"
        data-schedule={schedule}
        title={trans.__('Started by the schedule %1, with nobody present', schedule)}
      >
        {props.long ? trans.__('scheduled: %1', schedule) : trans.__('scheduled')}
      </span>
    );
  }

  function List(props: Props): JSX.Element {
    const { model, trans } = props;
    const groups = groupRuns(model.runs);
    return (
      <div className="aiinfra-runs-list">
        {groups.length === 0 && <div className="aiinfra-note">{trans.__('No pipeline runs yet.')}</div>}
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
                    title={trans.__('run %1', r.run_id)}
                    onClick={() => model.select(r.run_id)}
                  >
                    <Badge status={r.status} trans={trans} />
                    <span className="aiinfra-runs-when">{when(r.start)}</span>
                    <Scheduled run={r} trans={trans} />
                    <span className="aiinfra-dim aiinfra-runs-summary">
                      {[formatSeconds(r.duration, trans), counts(r, trans)].filter(Boolean).join(' · ')}
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
                  <Badge status="cached" trans={trans} />
                  <span className="aiinfra-runs-when">{when(latest.start)}</span>
                  <Scheduled run={latest} trans={trans} />
                  <span className="aiinfra-dim">
                    {trans._n('nothing changed', '%1 runs, nothing changed', row.runs.length)}
                  </span>
                </div>
              );
            })}
          </section>
        ))}
      </div>
    );
  }

  function label(name: string): string {
    return name.length > 19 ? `${name.slice(0, 18)}…` : name;
  }

  function Dag(props: Props & { run: IRunRecord }): JSX.Element {
    const { run, commands, ids, trans } = props;
    const layout = dagLayout(run);
    const at = new Map(layout.nodes.map(n => [n.name, n]));
    const pad = 4;
    const [arrow] = React.useState(() => `aiinfra-dag-arrow-${++arrows}`);
    // Run from here: a new run of the same pipeline, so not while this one runs.
    const from = run.status !== 'running' && !!pipelinePath(run);
    return (
      <svg
        className="aiinfra-dag"
        width={layout.width + 2 * pad}
        height={layout.height + 2 * pad}
        viewBox={`${-pad} ${-pad} ${layout.width + 2 * pad} ${layout.height + 2 * pad}`}
        role="img"
        aria-label={trans.__('The steps of run %1 and what each runs after', run.run_id)}
      >
        <defs>
          <marker
            id={arrow}
            viewBox="0 0 10 10"
            refX={10}
            refY={5}
            markerWidth={7}
            markerHeight={7}
            orient="auto-start-reverse"
          >
            <path className="aiinfra-dag-arrowhead" d="M0,0 L10,5 L0,10 z" />
          </marker>
        </defs>
        {layout.edges.map(e => {
          const a = at.get(e.from)!;
          const b = at.get(e.to)!;
          const x1 = a.x + NODE_W;
          const y1 = a.y + NODE_H / 2;
          const x2 = b.x - 1;
          const y2 = b.y + NODE_H / 2;
          const mid = (x1 + x2) / 2;
          return (
            <path
              className="aiinfra-dag-edge"
              data-from={e.from}
              data-to={e.to}
              key={`${e.from}->${e.to}`}
              d={`M${x1},${y1} C${mid},${y1} ${mid},${y2} ${x2},${y2}`}
              markerEnd={`url(#${arrow})`}
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
            <title>{`${n.name}: ${statusLabel(n.status, trans)}`}</title>
            <rect width={NODE_W} height={NODE_H} rx={5} />
            <text x={8} y={NODE_H / 2 + 4}>
              {label(n.name)}
            </text>
            {from && (
              <g
                className="aiinfra-dag-from"
                role="button"
                tabIndex={0}
                aria-label={trans.__('Run from here: %1 and everything after it', n.name)}
                transform={`translate(${NODE_W - 24},${(NODE_H - 20) / 2})`}
                onClick={() => void commands.execute(ids.runFrom, { run_id: run.run_id, step: n.name })}
                onKeyDown={event => {
                  if (event.key === 'Enter' || event.key === ' ') {
                    event.preventDefault();
                    void commands.execute(ids.runFrom, { run_id: run.run_id, step: n.name });
                  }
                }}
              >
                <title>{trans.__('Run from here: %1 and everything after it, whatever the cache holds', n.name)}</title>
                <rect width={20} height={20} rx={4} />
                <path d="M7,5 L15,10 L7,15 z" />
              </g>
            )}
          </g>
        ))}
      </svg>
    );
  }

  /** "Show its log": a launch's log, read through our REST on demand (never a server path). */
  function LaunchLog(props: Props & { launch: string }): JSX.Element {
    const { model, launch, trans } = props;
    const [log, setLog] = React.useState<ILaunchLog | null>(null);
    const [error, setError] = React.useState<string | null>(null);
    const show = () => {
      setError(null);
      model.launchLog(launch).then(setLog, reason => setError(String(reason?.message ?? reason)));
    };
    return (
      <>
        {!log && (
          <button className="aiinfra-link aiinfra-launch-log-open" onClick={show}>
            {trans.__('Show its log')}
          </button>
        )}
        {error && <div className="aiinfra-error">{error}</div>}
        {log && (
          <pre className="aiinfra-launch-log" data-launch={launch}>
            {log.truncated ? trans.__('… (earlier lines left out)\n') : ''}
            {log.text}
          </pre>
        )}
      </>
    );
  }

  /** A launch that never became a run: its exit code and, on demand, its log. */
  function FailedLaunch(props: Props & { launch: ILaunchRecord }): JSX.Element {
    const { launch, trans } = props;
    return (
      <div className="aiinfra-launch-failed">
        <div className="aiinfra-error">
          {trans.__('The run of %1 did not start (exit code %2).', launch.pipeline, String(launch.exit_code))}
        </div>
        <LaunchLog {...props} launch={launch.launch} />
      </div>
    );
  }

  function Detail(props: Props): JSX.Element {
    const { model, commands, ids, trans } = props;
    const run = model.run;
    const launch = model.launch;
    if (!run) {
      if (launch) {
        const failed = launch.status !== 'running' && !launch.run_id;
        return (
          <div className="aiinfra-run-detail" data-launch={launch.launch} data-status={launch.status}>
            {failed ? (
              <FailedLaunch {...props} launch={launch} />
            ) : (
              <div className="aiinfra-note">{trans.__('Starting %1…', launch.pipeline)}</div>
            )}
          </div>
        );
      }
      return (
        <div className="aiinfra-run-detail">
          <div className="aiinfra-note">{trans.__('Pick a run on the left.')}</div>
        </div>
      );
    }
    const now = Date.now() / 1000;
    const failed = failedSteps(run);
    const cached = isFullyCached(run);
    const resumable = canResume(run, model.runs);
    // The launch this server made for the run: its log says more than the record.
    const launchOf = model.launches.find(l => l.run_id === run.run_id && l.status !== 'running');
    const cluster = run.cluster
      ? run.cluster.embedded
        ? trans.__('its own worker threads')
        : trans.__('cluster %1', run.cluster.name ?? '?')
      : '';
    const head = [
      trans.__('run %1', run.run_id),
      when(run.start),
      run.duration ? formatSeconds(run.duration, trans) : '',
      run.cost?.steps ? formatCost(run.cost, trans) : '',
      cluster
    ].filter(Boolean);
    return (
      <div className="aiinfra-run-detail" data-run-id={run.run_id} data-status={run.status}>
        <div className="aiinfra-run-head">
          <b>{run.pipeline}</b> <Badge status={cached ? 'cached' : run.status} trans={trans} />{' '}
          <Scheduled run={run} trans={trans} long />{' '}
          <span className="aiinfra-dim" title={costTitle(run.cost, trans)}>
            {head.join(' · ')}
          </span>
        </div>
        {cached && <div className="aiinfra-note">{trans.__('Nothing changed: every step came from the cache.')}</div>}
        {run.error && (
          <div className="aiinfra-run-error">
            <div className="aiinfra-error">{trans.__('The run stopped before its steps: %1', run.error)}</div>
            {launchOf && <LaunchLog {...props} launch={launchOf.launch} />}
          </div>
        )}
        <div className="aiinfra-run-actions">
          {run.status === 'running' && (
            <button
              className="jp-mod-styled aiinfra-button aiinfra-mod-warn aiinfra-cancel-run"
              disabled={!model.cancellable(run)}
              title={
                model.cancellable(run)
                  ? trans.__('Stop this run')
                  : trans.__('Only runs started from this Jupyter server can be cancelled here')
              }
              onClick={() => void commands.execute(ids.cancelRun, { run_id: run.run_id })}
            >
              {trans.__('Cancel run')}
            </button>
          )}
          {resumable && (
            <button
              className="jp-mod-styled aiinfra-button aiinfra-mod-primary aiinfra-resume-run"
              title={trans.__('Run the failed and interrupted steps again, and everything after them; finished steps are kept')}
              onClick={() => void commands.execute(ids.resumeRun, { run_id: run.run_id })}
            >
              {trans.__('Resume')}
            </button>
          )}
          {failed.length > 0 && run.status !== 'running' && (
            <button
              className="jp-mod-styled aiinfra-button aiinfra-rerun-failed"
              title={trans.__('Run again: %1', failed.join(', '))}
              onClick={() => void commands.execute(ids.rerunFailed, { run_id: run.run_id })}
            >
              {trans.__('Re-run failed steps')}
            </button>
          )}
        </div>
        <Dag {...props} run={run} />
        <table className="aiinfra-steps">
          <thead>
            <tr>
              <th>{trans.__('step')}</th>
              <th>{trans.__('status')}</th>
              <th>{trans.__('duration')}</th>
              <th>{trans.__('attempts')}</th>
              <th title={trans.__('The host and worker the step ran on, and its devices')}>{trans.__('where')}</th>
              <th title={trans.__('The largest memory the step used, against its limit')}>{trans.__('peak memory')}</th>
              <th title={trans.__('What the step held while it ran: core time, and GPU time where it had GPUs')}>
                {trans.__('cost')}
              </th>
              <th title={trans.__('Used against held: CPU time against core time, GPU use against GPU time')}>
                {trans.__('efficiency')}
              </th>
              <th>{trans.__('notebook')}</th>
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
                      <Badge status={step.status} trans={trans} />
                    </td>
                    <td className="aiinfra-step-duration">{formatSeconds(stepDuration(step, now), trans)}</td>
                    <td className="aiinfra-step-attempts">{step.attempts ?? 0}</td>
                    <td className="aiinfra-step-where" title={step.worker ?? ''}>
                      {placement(step, trans)}
                    </td>
                    <td className="aiinfra-step-peak">
                      {peakMemory(step.cost, trans) || (step.peak_rss ? formatBytes(step.peak_rss) : '')}
                    </td>
                    <td className="aiinfra-step-cost" title={costTitle(step.cost, trans)}>
                      {formatCost(step.cost, trans)}
                    </td>
                    <td className="aiinfra-step-efficiency" title={stepEfficiencyTitle(step.cost, trans, held(trans))}>
                      {stepEfficiency(step.cost, trans)}
                    </td>
                    <td>
                      {step.notebook_path && step.status !== 'pending' && step.status !== 'skipped' && (
                        <button
                          className="jp-mod-styled aiinfra-button aiinfra-open-executed"
                          title={trans.__('Open %1 read-only (no kernel)', step.notebook_path)}
                          onClick={() =>
                            void commands.execute(ids.openExecuted, {
                              path: step.notebook_path!,
                              run_id: run.run_id,
                              source: sourcePath(run, step)
                            })
                          }
                        >
                          {trans.__('open')}
                        </button>
                      )}
                    </td>
                  </tr>
                  {step.status === 'failed' && (
                    <tr className="aiinfra-step-failure" data-step={step.name}>
                      <td colSpan={9}>
                        <div className="aiinfra-error">{step.error ?? trans.__('failed')}</div>
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
        <Sizing run={run} trans={trans} />
      </div>
    );
  }

  /** Held amounts as the cost cells write them: `0.43 core-s`, `3.4 GPU-min`. */
  function held(trans: TranslationBundle) {
    return (hours: number, what: 'core' | 'GPU') => formatAmount(hours, what === 'core' ? trans.__('core') : trans.__('GPU'), trans);
  }

  /** The run's efficiency and its right-sizing per step, from the measured peaks (issue 28). */
  function Sizing(props: { run: IRunRecord; trans: TranslationBundle }): JSX.Element | null {
    const { run, trans } = props;
    const used = efficiencyParts(run.cost, trans, held(trans));
    const suggestions = runSuggestions(run as { suggestions?: unknown });
    if (!used && suggestions.length === 0) {
      return null;
    }
    return (
      <section className="aiinfra-run-sizing">
        <h4 className="aiinfra-run-sizing-title">{trans.__('Used against held')}</h4>
        {used && <div className="aiinfra-run-efficiency">{used.join(' · ')}</div>}
        {suggestions.length > 0 && (
          <ul className="aiinfra-suggestions" aria-label={trans.__('Right-sizing suggestions')}>
            {suggestions.map(s => (
              <li
                className={`aiinfra-suggestion${asksForChange(s) ? ' aiinfra-mod-change' : ''}`}
                data-step={s.step}
                key={s.step}
              >
                {s.text}
              </li>
            ))}
          </ul>
        )}
      </section>
    );
  }

  export function View(props: Props): JSX.Element {
    const { model, trans } = props;
    return (
      <div className="aiinfra-runs">
        {model.error && <div className="aiinfra-error">{model.error}</div>}
        {!model.available && (
          <div className="aiinfra-note">{trans.__('Pipelines not available: %1', model.reason)}</div>
        )}
        <List {...props} />
        <Detail {...props} />
      </div>
    );
  }
}
