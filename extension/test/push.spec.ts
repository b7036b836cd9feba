/** The model applies pushed clusters, runs and metrics, and polls only while the socket is down. */

import { PanelModel } from '../src/model';
import { waitFor } from './dom';
import { cluster, FakeServer, FakeSocket } from './fakeserver';

function pushedModel(server: FakeServer): PanelModel {
  const model = new PanelModel({
    requester: server.requester(),
    interval: 20, // a fast poll, so that "it did not poll" means something
    connect: () => new FakeSocket(),
    reconnectDelay: 60000 // the test decides when the socket comes back
  });
  model.visible = true;
  return model;
}

const polls = (server: FakeServer) => server.calls.filter(c => c.path === 'clusters').length;

describe('push', () => {
  let server: FakeServer;
  let model: PanelModel;
  beforeEach(() => {
    FakeSocket.opened = [];
    server = new FakeServer();
  });
  afterEach(() => model.dispose());

  it('applies pushed clusters, runs and metrics as they come', () => {
    model = pushedModel(server);
    model.start();
    FakeSocket.last().open();
    let changes = 0;
    model.changed.connect(() => (changes += 1));
    FakeSocket.last().push({ type: 'clusters', clusters: [cluster('pushed')] });
    expect(model.cluster('pushed')?.workers).toBe(1);
    FakeSocket.last().push({ type: 'runs', runs: [{ run_id: 'r1', status: 'ok' }] });
    expect(model.runs.data).toEqual({ available: true, runs: [{ run_id: 'r1', status: 'ok' }], launches: [] });
    const metrics = { gpus: [], reason: 'No GPU here.', timestamp: 10, host: { cpu_percent: 12 } };
    FakeSocket.last().push({ type: 'metrics', metrics });
    FakeSocket.last().push({ type: 'metrics', metrics }); // same sample again: history unchanged
    FakeSocket.last().push({ type: 'metrics', metrics: { ...metrics, timestamp: 11 } });
    expect(model.metrics.data?.reason).toBe('No GPU here.');
    expect(model.history.map(m => m.timestamp)).toEqual([10, 11]);
    FakeSocket.last().push({ type: 'clusters', clusters: [] });
    expect(model.cluster('pushed')).toBeUndefined();
    expect(changes).toBe(6);
  });

  it('does not poll while pushed, polls while the socket is down, stops once it is back', async () => {
    server.clusters = [cluster('c1')];
    model = pushedModel(server);
    model.start();
    FakeSocket.last().open();
    await waitFor(() => server.calls.some(c => c.path === 'devices'), 'devices fetched once on connect');
    const before = polls(server);
    await new Promise(resolve => setTimeout(resolve, 200)); // ten poll intervals
    expect(polls(server)).toBe(before);
    expect(model.pushing).toBe(true);

    FakeSocket.last().drop();
    expect(model.pushing).toBe(false);
    await waitFor(() => polls(server) >= before + 2, 'polling while the socket is down');
    expect(model.cluster('c1')).toBeDefined();

    // The socket comes back (the reconnect timer fires): polling stops again.
    model.stream!.start();
    FakeSocket.last().open();
    await new Promise(resolve => setTimeout(resolve, 40)); // a poll already under way ends
    const resumed = polls(server);
    await new Promise(resolve => setTimeout(resolve, 200));
    expect(polls(server)).toBe(resumed);
  });

  it('keeps polling for open charts and panes while the sidebar is hidden', async () => {
    model = pushedModel(server);
    model.visible = false;
    model.start(); // never opens: the server has no push channel
    FakeSocket.last().drop();
    await new Promise(resolve => setTimeout(resolve, 100));
    expect(polls(server)).toBe(0);
    model.watchers = 1;
    await waitFor(() => polls(server) >= 2, 'polling for the open chart');
  });

  it('forgets listed dashboard plots of a cluster that left', async () => {
    server.clusters = [cluster('c1')];
    model = pushedModel(server);
    const plots = (await model.loadPlots('c1'))!.plots;
    expect(plots.map(p => p.path)).toEqual(['individual-progress', 'individual-task-stream', 'individual-workers-memory']);
    expect(plots[0].label).toBe('Progress');
    model.apply({ type: 'clusters', clusters: [] });
    expect(model.plots.has('c1')).toBe(false);
    await model.loadPlots('gone');
    expect(model.plots.get('gone')?.error).toContain("no cluster named 'gone'");
  });
});
