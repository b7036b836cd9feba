/**
 * The sidebar's Pipelines section: "Run pipeline…", launches that have not
 * become runs yet (a failed one links to its log in the run view), and the
 * latest runs by their start time, each with its steps; a run a schedule
 * started says so. The panel (panel.tsx) renders it; it runs commands only.
 */

import { TranslationBundle } from '@jupyterlab/translation';
import { CommandRegistry } from '@lumino/commands';
import * as React from 'react';

import { IRun, PanelModel, runSteps, stepNotebookPath } from '../model';
import { bundle } from './i18n';
import { formatSeconds, IRunRecord, scheduleOf, statusLabel } from './runs';

/** How many runs the sidebar lists (the run view has them all). */
export const SIDEBAR_RUNS = 10;

export interface IPipelineSectionProps {
  model: PanelModel;
  commands: CommandRegistry;
  ids: { runPipeline: string; openRuns?: string; openExecuted?: string };
  trans?: TranslationBundle;
}

function startOf(run: IRun): number {
  const start = Number(run.start);
  return isFinite(start) ? start : 0;
}

/** A start time as the sidebar shows it: the time today, else the day and time. */
export function startLabel(start: number, now: Date = new Date()): string {
  if (!start) {
    return '';
  }
  const at = new Date(start * 1000);
  const today = at.toDateString() === now.toDateString();
  return today
    ? at.toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit' })
    : at.toLocaleString(undefined, { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' });
}

export function PipelineSection(props: IPipelineSectionProps): JSX.Element {
  const { model, commands, ids } = props;
  const trans = props.trans ?? bundle();
  const openRuns = ids.openRuns ?? 'aiinfra:open-runs';
  const openExecuted = ids.openExecuted ?? 'aiinfra:open-executed';
  const data = model.runs.data;
  if (data && !data.available) {
    return <div className="aiinfra-note">{trans.__('Pipelines not available: %1', data.reason ?? '')}</div>;
  }
  const runs = [...(data?.runs ?? [])].sort((a, b) => startOf(b) - startOf(a)).slice(0, SIDEBAR_RUNS);
  return (
    <div className="aiinfra-pipelines">
      <button
        className="jp-mod-styled aiinfra-run"
        title={trans.__('Run a pipeline.yaml: pick it in the dialog')}
        onClick={() => void commands.execute(ids.runPipeline)}
      >
        {trans.__('Run pipeline…')}
      </button>
      {model.runs.error && <div className="aiinfra-error">{model.runs.error}</div>}
      {(data?.launches ?? [])
        .filter(l => l.status !== 'finished' && !(l as { run_id?: string | null }).run_id)
        .map(l => {
          const where = l.pipeline.split('/').slice(-2).join('/');
          const failed = l.status !== 'running';
          return (
            <div className="aiinfra-launch" data-launch={l.launch} data-status={l.status} key={l.launch}>
              {failed
                ? trans.__('%1: did not start (exit code %2)', where, String(l.exit_code ?? '?'))
                : trans.__('%1: starting…', where)}
              {failed && (
                <>
                  {' '}
                  <button
                    className="aiinfra-link aiinfra-launch-log-link"
                    title={trans.__('Show the log of this launch in the run view')}
                    onClick={() => void commands.execute(openRuns, { run_id: l.launch })}
                  >
                    {trans.__('log')}
                  </button>
                </>
              )}
            </div>
          );
        })}
      {data && data.runs.length === 0 && <div className="aiinfra-note">{trans.__('No pipeline runs yet.')}</div>}
      {runs.map(r => {
        const schedule = scheduleOf(r as IRunRecord);
        return (
          <details className="aiinfra-runinfo" data-run-id={r.run_id} key={`${r.folder}-${r.run_id}`}>
            <summary title={trans.__('run %1', r.run_id)}>
              <span className={`aiinfra-status aiinfra-status-${r.status}`}>{statusLabel(r.status, trans)}</span>
              <span className="aiinfra-run-when">{startLabel(startOf(r))}</span>
              <span className="aiinfra-run-pipeline">{r.pipeline ?? r.folder?.replace(/\/runs\/.*/, '') ?? ''}</span>
              {schedule && (
                <span
                  className="aiinfra-scheduled"
                  data-schedule={schedule}
                  title={trans.__('Started by the schedule %1, with nobody present', schedule)}
                >
                  {trans.__('scheduled')}
                </span>
              )}
            </summary>
            {runSteps(r).map(step => {
              const path = stepNotebookPath(step);
              return (
                <div className="aiinfra-step" key={step.name}>
                  <span className={`aiinfra-status aiinfra-status-${step.status}`}>{statusLabel(step.status, trans)}</span>{' '}
                  {path ? (
                    <button
                      className="aiinfra-link"
                      title={trans.__('Open %1 read-only', path)}
                      onClick={() => void commands.execute(openExecuted, { path, run_id: r.run_id })}
                    >
                      {step.name}
                    </button>
                  ) : (
                    step.name
                  )}
                  {typeof step.duration === 'number' ? ` · ${formatSeconds(step.duration, trans)}` : ''}
                </div>
              );
            })}
            <button
              className="aiinfra-link aiinfra-run-open"
              onClick={() => void commands.execute(openRuns, { run_id: r.run_id })}
            >
              {trans.__('Open in the run view')}
            </button>
          </details>
        );
      })}
    </div>
  );
}
