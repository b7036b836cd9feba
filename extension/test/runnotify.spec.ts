/** A run-ended event pushed by the server becomes a notification that opens the run view. */

import { CommandRegistry } from '@lumino/commands';

import { PanelModel } from '../src/model';
import { RunNotifications, runNotice } from '../src/pipelines/notify';
import { FakeServer, FakeSocket } from './fakeserver';

describe('run notifications', () => {
  let model: PanelModel;
  afterEach(() => model.dispose());

  it('shows each ended run once, failed ones sticky, with an action that opens the run', async () => {
    model = new PanelModel({
      requester: new FakeServer().requester(),
      connect: () => new FakeSocket(),
      reconnectDelay: 60000
    });
    model.start();
    FakeSocket.last().open();
    const commands = new CommandRegistry();
    const opened: unknown[] = [];
    commands.addCommand('aiinfra:open-runs', { execute: args => void opened.push(args) });
    const shown: { message: string; type: unknown; options: any }[] = [];
    RunNotifications.add({
      pushed: model.pushed,
      commands,
      openRuns: 'aiinfra:open-runs',
      emit: (message, type, options) => {
        shown.push({ message, type, options });
        return String(shown.length);
      }
    });

    FakeSocket.last().push({ type: 'runs', runs: [] }); // not an event: nothing shown
    FakeSocket.last().push({
      type: 'run-ended',
      run: {
        run_id: 'r1',
        pipeline: 'nightly',
        status: 'failed',
        duration: 12.34,
        failed_steps: [{ step: 'train', error: 'ValueError: bad lr' }],
        trigger: { kind: 'schedule', schedule: 'every-night' }
      }
    });
    FakeSocket.last().push({ type: 'run-ended', run: { run_id: 'r2', pipeline: 'p', status: 'ok', duration: 1 } });
    FakeSocket.last().push({ type: 'run-ended', run: { status: 'ok' } }); // malformed: ignored

    expect(shown).toHaveLength(2);
    expect(shown[0].message).toBe(
      'Pipeline nightly failed in 12.3 s (schedule every-night) — train: ValueError: bad lr'
    );
    expect(shown[0].type).toBe('error');
    expect(shown[0].options.autoClose).toBe(false);
    expect(shown[1].message).toBe('Pipeline p finished in 1.0 s');
    expect(shown[1].type).toBe('success');
    expect(shown[1].options.autoClose).toBeGreaterThan(0);

    const [action] = shown[0].options.actions;
    expect(action.label).toBe('Open run');
    action.callback(new MouseEvent('click'));
    await Promise.resolve();
    expect(opened).toEqual([{ run_id: 'r1' }]);
  });

  it('says interrupted as a warning', () => {
    const notice = runNotice({ run_id: 'r3', pipeline: 'p', status: 'interrupted', failed_steps: [{ step: 'a' }] });
    expect(notice).toEqual({ message: 'Pipeline p interrupted — a', type: 'warning', autoClose: false });
  });
});
