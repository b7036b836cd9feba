/**
 * The push channel: one WebSocket to `aiinfra/api/events` that the server
 * uses to send clusters, runs and GPU/host metrics whenever they change.
 *
 * Pure code (no JupyterLab runtime imports) so jest can drive it with a fake
 * socket: the caller passes `connect`, which in the lab opens the socket
 * through ServerConnection's settings (wsUrl, token, the WebSocket class).
 * While the socket is down it reconnects with exponential backoff and says so
 * through `stateChanged`, so the model can poll in the meantime.
 */

import { ISignal, Signal } from '@lumino/signaling';

/** What the server pushes (see aiinfra_magics/server/push.py). */
export type PushMessage =
  | { type: 'clusters'; clusters: unknown[] }
  | { type: 'runs'; runs: unknown }
  | { type: 'metrics'; metrics: unknown }
  | { type: 'run-ended'; run: unknown };

/** The part of a browser WebSocket the stream uses. */
export interface ISocketLike {
  onopen: ((event: any) => void) | null;
  onmessage: ((event: any) => void) | null;
  onclose: ((event: any) => void) | null;
  onerror: ((event: any) => void) | null;
  close(): void;
}

/** Parse one pushed frame; null for anything that is not a known message. */
export function parseMessage(data: unknown): PushMessage | null {
  if (typeof data !== 'string') {
    return null;
  }
  let value: any;
  try {
    value = JSON.parse(data);
  } catch {
    return null;
  }
  if (!value || typeof value !== 'object' || !(value.type in Private.KINDS)) {
    return null;
  }
  if (value.type === 'clusters' && !Array.isArray(value.clusters)) {
    return null;
  }
  return value as PushMessage;
}

export class EventStream {
  constructor(options: EventStream.IOptions) {
    this._connect = options.connect;
    this._onMessage = options.onMessage;
    this._initial = options.initialDelay ?? 500;
    this._max = options.maxDelay ?? 30000;
    this._delay = this._initial;
  }

  /** True while the socket is open: pushed data is current, no polling needed. */
  get connected(): boolean {
    return this._connected;
  }

  /** Emits the new `connected` value whenever it changes. */
  get stateChanged(): ISignal<this, boolean> {
    return this._stateChanged;
  }

  /** Milliseconds before the next reconnection attempt (doubles per failure). */
  get delay(): number {
    return this._delay;
  }

  get isDisposed(): boolean {
    return this._disposed;
  }

  /** Open the socket (again); no-op while one is open or being opened. */
  start(): void {
    if (this._disposed || this._socket) {
      return;
    }
    this._clearTimer();
    let socket: ISocketLike;
    try {
      socket = this._connect();
    } catch (reason) {
      console.warn('aiinfra: events socket not opened', reason);
      this._scheduleReconnect();
      return;
    }
    this._socket = socket;
    socket.onopen = () => {
      this._delay = this._initial;
      this._setConnected(true);
    };
    socket.onmessage = event => {
      const message = parseMessage(event.data);
      if (message) {
        this._onMessage(message);
      }
    };
    socket.onerror = () => undefined; // onclose follows and handles it
    socket.onclose = () => {
      if (this._socket !== socket) {
        return;
      }
      this._socket = null;
      this._setConnected(false);
      this._scheduleReconnect();
    };
  }

  dispose(): void {
    if (this._disposed) {
      return;
    }
    this._disposed = true;
    this._clearTimer();
    const socket = this._socket;
    this._socket = null;
    if (socket) {
      socket.onclose = null;
      socket.onmessage = null;
      socket.close();
    }
    this._connected = false;
    Signal.clearData(this);
  }

  private _scheduleReconnect(): void {
    if (this._disposed) {
      return;
    }
    const delay = this._delay;
    this._delay = Math.min(this._max, this._delay * 2);
    this._clearTimer();
    this._timer = setTimeout(() => {
      this._timer = null;
      this.start();
    }, delay);
  }

  private _clearTimer(): void {
    if (this._timer !== null) {
      clearTimeout(this._timer);
      this._timer = null;
    }
  }

  private _setConnected(value: boolean): void {
    if (this._connected !== value) {
      this._connected = value;
      this._stateChanged.emit(value);
    }
  }

  private _connect: () => ISocketLike;
  private _onMessage: (message: PushMessage) => void;
  private _socket: ISocketLike | null = null;
  private _connected = false;
  private _disposed = false;
  private _timer: ReturnType<typeof setTimeout> | null = null;
  private _initial: number;
  private _max: number;
  private _delay: number;
  private _stateChanged = new Signal<this, boolean>(this);
}

export namespace EventStream {
  export interface IOptions {
    /** Open the socket (ServerConnection's wsUrl + token in the lab, a fake in tests). */
    connect: () => ISocketLike;
    /** Called with each pushed message. */
    onMessage: (message: PushMessage) => void;
    /** First reconnection delay in ms (default 500); doubles up to `maxDelay` (default 30000). */
    initialDelay?: number;
    maxDelay?: number;
  }
}

namespace Private {
  export const KINDS = { clusters: true, runs: true, metrics: true, 'run-ended': true };
}
