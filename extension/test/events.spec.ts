import { EventStream, parseMessage } from '../src/events';
import { FakeSocket } from './fakeserver';

describe('events socket', () => {
  beforeEach(() => {
    FakeSocket.opened = [];
    jest.useFakeTimers();
  });
  afterEach(() => {
    jest.useRealTimers();
  });

  it('passes on known messages only', () => {
    expect(parseMessage('{"type":"clusters","clusters":[]}')).toEqual({ type: 'clusters', clusters: [] });
    expect(parseMessage('{"type":"metrics","metrics":{}}')).toEqual({ type: 'metrics', metrics: {} });
    expect(parseMessage('{"type":"clusters","clusters":{}}')).toBeNull();
    expect(parseMessage('{"type":"other"}')).toBeNull();
    expect(parseMessage('not json')).toBeNull();
    expect(parseMessage(new ArrayBuffer(2))).toBeNull();
  });

  it('reconnects with doubling delays, back to the first after a success', () => {
    const got: unknown[] = [];
    const states: boolean[] = [];
    const stream = new EventStream({
      connect: () => new FakeSocket(),
      onMessage: m => got.push(m),
      initialDelay: 100,
      maxDelay: 350
    });
    stream.stateChanged.connect((_, s) => states.push(s));
    stream.start();
    expect(FakeSocket.opened).toHaveLength(1);
    FakeSocket.last().open();
    expect(stream.connected).toBe(true);
    FakeSocket.last().push({ type: 'runs', runs: [] });
    expect(got).toEqual([{ type: 'runs', runs: [] }]);

    FakeSocket.last().drop(); // server restarts
    expect(stream.connected).toBe(false);
    jest.advanceTimersByTime(99);
    expect(FakeSocket.opened).toHaveLength(1);
    jest.advanceTimersByTime(1);
    expect(FakeSocket.opened).toHaveLength(2); // after 100 ms
    FakeSocket.last().drop(); // refused
    jest.advanceTimersByTime(199);
    expect(FakeSocket.opened).toHaveLength(2);
    jest.advanceTimersByTime(1);
    expect(FakeSocket.opened).toHaveLength(3); // after 200 ms
    FakeSocket.last().drop();
    jest.advanceTimersByTime(350);
    expect(FakeSocket.opened).toHaveLength(4); // capped at 350 ms
    FakeSocket.last().open();
    expect(stream.delay).toBe(100);
    expect(states).toEqual([true, false, true]);

    stream.dispose();
    expect(FakeSocket.last().closed).toBe(true);
    jest.advanceTimersByTime(10000);
    expect(FakeSocket.opened).toHaveLength(4); // no reconnection after dispose
  });

  it('retries when the socket cannot even be constructed', () => {
    let fail = true;
    const warn = jest.spyOn(console, 'warn').mockImplementation(() => undefined);
    const stream = new EventStream({
      connect: () => {
        if (fail) {
          throw new Error('blocked');
        }
        return new FakeSocket();
      },
      onMessage: () => undefined,
      initialDelay: 50
    });
    stream.start();
    fail = false;
    jest.advanceTimersByTime(50);
    expect(FakeSocket.opened).toHaveLength(1);
    warn.mockRestore();
    stream.dispose();
  });
});
