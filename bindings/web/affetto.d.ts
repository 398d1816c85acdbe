// Type declarations for affetto.js (protocol version 1; see bindings/PROTOCOL.md).

export type SyncPoint = "immediate" | "beat" | "bar" | "phrase";
export type TransportAction = "start" | "stop" | "tempo" | "seed" | "sync";
export type ErrorCode =
  | "bad_message"
  | "unknown_op"
  | "bad_argument"
  | "rate_limited"
  | "unauthorized"
  | "unsupported"
  | "busy"
  // found by the client, not sent by the server:
  | "timeout" // no reply within timeoutMs
  | "closed"; // the connection closed before the reply

export declare const SYNC_POINTS: readonly SyncPoint[];
export declare const TRANSPORT_ACTIONS: readonly TransportAction[];
export declare const EVENTS: readonly (keyof AffettoEvents)[];

/** The `ok` reply to an operation. */
export interface OkReply {
  event: "ok";
  op: string;
  id: number;
  [key: string]: unknown;
}

export interface BeatEvent {
  event: "beat";
  session: string;
  bar: number;
  /** Beat in the bar; 0 is the downbeat. */
  beat: number;
  tempo_bpm: number;
  /** When the beat sounds on the session's clock (seconds since its start). */
  time_s: number;
  downbeat: boolean;
}

export interface BarEvent {
  event: "bar";
  bar: number;
  state: string;
  valence: number;
  arousal: number;
  tension: number;
  tempo_bpm: number;
  key?: string;
  layers?: string[];
  [key: string]: unknown;
}

export interface TransitionEvent {
  event: "transition";
  /** The operation whose change landed ("state", "emotion", ...). */
  op: string;
  beat: number;
  [key: string]: unknown;
}

export interface StatusEvent {
  event: "status";
  session?: string;
  state?: string;
  valence?: number;
  arousal?: number;
  tension?: number;
  tempo_bpm?: number;
  bar?: number;
  /** The server's outputs this session plays into ("audio", "midi"); empty: silent. */
  outputs?: string[];
  [key: string]: unknown;
}

export interface ErrorEvent {
  event: "error";
  code: ErrorCode | string;
  message: string;
  op?: string;
  id?: unknown;
}

export interface CloseEvent {
  code: number;
  reason: string;
}

/** An error reported by the server (or a client-side "timeout" / "closed"); operations reject with it. */
export declare class AffettoError extends Error {
  constructor(code: string, message: string, event?: Partial<ErrorEvent>);
  readonly code: ErrorCode | string;
  readonly op?: string;
  readonly id?: unknown;
  readonly event: Partial<ErrorEvent>;
}

export interface AffettoEvents {
  beat: BeatEvent;
  bar: BarEvent;
  transition: TransitionEvent;
  status: StatusEvent;
  /** Errors that answer no pending operation (those reject the operation's promise instead). */
  error: AffettoError;
  close: CloseEvent;
}

/** A WHATWG-style WebSocket constructor (the browser's, Node's global, or a compatible one). */
export type WebSocketConstructor = new (url: string) => WebSocket;

export interface AffettoClientOptions {
  /** The shared secret, needed when the server is bound beyond loopback (sent as `?token=`). */
  token?: string;
  /** A WebSocket constructor; default: `globalThis.WebSocket`. */
  WebSocket?: WebSocketConstructor;
  /** How long an operation waits for its reply before rejecting (default 5000 ms). */
  timeoutMs?: number;
  /** After this long without a request, send a quiet status request so the server does not expire
   * the session of a client that only listens (default 20000 ms; 0 disables). */
  keepAliveMs?: number;
}

/** The reply to hello. */
export interface HelloReply {
  event: "hello";
  id: number;
  session: string;
  version: number;
  states: string[];
  stingers: string[];
  [key: string]: unknown;
}

/** A leitmotif note: [onsetBeats, pitch (0..127), durationBeats, velocity (1..127)]. */
export type MotifNote = [number, number, number, number];

export declare class AffettoClient {
  constructor(url: string, options?: AffettoClientOptions);
  readonly url: string;
  readonly timeoutMs: number;
  readonly keepAliveMs: number;
  socket: WebSocket | null;

  /** Open the connection. */
  connect(): Promise<void>;
  /** Close the connection; pending operations reject. */
  close(): void;

  /** Register a handler; returns a function that removes it. */
  on<K extends keyof AffettoEvents>(event: K, handler: (payload: AffettoEvents[K]) => void): () => void;
  off<K extends keyof AffettoEvents>(event: K, handler: (payload: AffettoEvents[K]) => void): void;

  emotion(
    valence: number,
    arousal: number,
    options?: { tension?: number; sync?: SyncPoint; seekPerS?: number },
  ): Promise<OkReply>;
  state(name: string, options?: { sync?: SyncPoint }): Promise<OkReply>;
  param(name: string, value: number): Promise<OkReply>;
  stinger(name: string): Promise<OkReply>;
  leitmotif(name: string, options?: { sync?: SyncPoint; notes?: MotifNote[] }): Promise<OkReply>;
  transport(action: "start" | "stop"): Promise<OkReply>;
  transport(action: "tempo" | "seed", value: number): Promise<OkReply>;
  transport(action: "sync", value: SyncPoint): Promise<OkReply>;
  subscribe(): Promise<OkReply>;
  unsubscribe(): Promise<OkReply>;
  session(name: string): Promise<OkReply>;
  /** Play into these of the server's outputs ("audio", "midi"; at most 8); none: silent. */
  output(...names: string[]): Promise<OkReply>;
  text(text: string): Promise<OkReply>;
  /** Resolves with the status event. */
  status(): Promise<StatusEvent>;
  /** Authenticate (instead of the token option) and/or join a session. */
  hello(options?: { token?: string; session?: string }): Promise<HelloReply>;
}
