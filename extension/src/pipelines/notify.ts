/**
 * A JupyterLab notification when a pipeline run ends, whoever started it (the
 * lab, the CLI, a schedule). The server pushes `{type: 'run-ended', run}` on the
 * events socket (aiinfra_magics/server/push.py); a failed or interrupted run
 * stays until closed, a run that ended ok closes itself. "Open run" shows it in
 * the run view.
 */

import { Notification } from '@jupyterlab/apputils';
import { ITranslator, nullTranslator } from '@jupyterlab/translation';
import { CommandRegistry } from '@lumino/commands';
import { ISignal } from '@lumino/signaling';

import { PushMessage } from '../events';

/** What the server says about a run that ended. */
export interface IRunEnded {
  run_id: string;
  pipeline?: string | null;
  status: string;
  folder?: string | null;
  duration?: number | null;
  failed_steps?: { step: string; error?: string }[];
  trigger?: { kind?: string; schedule?: string | null } | null;
}

/** How a notice looks: its text, its kind and whether it closes by itself. */
export interface IRunNotice {
  message: string;
  type: Notification.TypeOptions;
  autoClose: number | false;
}

/** How long (ms) the notice of a run that ended ok stays. */
export const OK_CLOSE_MS = 8000;

/** The run a `run-ended` message carries, or null for anything else. */
export function runEnded(message: PushMessage): IRunEnded | null {
  if (message.type !== 'run-ended') {
    return null;
  }
  const run = message.run as IRunEnded | null;
  if (!run || typeof run !== 'object' || typeof run.run_id !== 'string' || typeof run.status !== 'string') {
    return null;
  }
  return run;
}

/** The notice for a run that ended (text only: the lab's notifications do not render HTML). */
export function runNotice(run: IRunEnded, trans = nullTranslator.load('aiinfra')): IRunNotice {
  const name = run.pipeline || run.run_id;
  const took = typeof run.duration === 'number' ? trans.__(' in %1 s', run.duration.toFixed(1)) : '';
  const trigger = run.trigger?.kind === 'schedule' && run.trigger.schedule ? trans.__(' (schedule %1)', run.trigger.schedule) : '';
  if (run.status === 'ok') {
    return {
      message: trans.__('Pipeline %1 finished%2%3', name, took, trigger),
      type: 'success',
      autoClose: OK_CLOSE_MS
    };
  }
  const failed = (run.failed_steps ?? []).map(f => (f.error ? `${f.step}: ${f.error}` : f.step));
  const detail = failed.length ? ` — ${failed.slice(0, 3).join('; ')}${failed.length > 3 ? ' …' : ''}` : '';
  return {
    message: trans.__('Pipeline %1 %2%3%4%5', name, run.status, took, trigger, detail),
    type: run.status === 'interrupted' ? 'warning' : 'error',
    autoClose: false
  };
}

export namespace RunNotifications {
  export interface IOptions {
    /** The model's pushed messages (PanelModel.pushed). */
    pushed: ISignal<unknown, PushMessage>;
    commands: CommandRegistry;
    /** The command that opens the run view at a run (`{run_id}`). */
    openRuns: string;
    translator?: ITranslator;
    /** Where notices go (the lab's Notification.emit; a fake in tests). */
    emit?: typeof Notification.emit;
  }

  /** Show a notification for every run-ended event the server pushes. */
  export function add(options: IOptions): void {
    const trans = (options.translator ?? nullTranslator).load('aiinfra');
    const emit = options.emit ?? Notification.emit.bind(Notification);
    options.pushed.connect((_, message) => {
      const run = runEnded(message);
      if (!run) {
        return;
      }
      const notice = runNotice(run, trans);
      emit(notice.message, notice.type, {
        autoClose: notice.autoClose,
        actions: [
          {
            label: trans.__('Open run'),
            caption: trans.__('Show run %1 in the run view', run.run_id),
            callback: () => void options.commands.execute(options.openRuns, { run_id: run.run_id })
          }
        ]
      });
    });
  }
}
