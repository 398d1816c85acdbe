// Type declarations for affetto.js (protocol version 1; see bindings/PROTOCOL.md).

export type SyncPoint = "immediate" | "beat" | "bar" | "phrase";
export type TransportAction = "start" | "stop" | "pause" | "resume" | "tempo" | "seed" | "sync";
export type ErrorCode =
  | "bad_message"
  | "unknown_op"
  | "bad_argument"
  | "rate_limited"
  | "unauthorized"
  | "unsupported"
  | "busy"
  | "not_playing"
  // found by the client, not sent by the server:
  | "timeout" // no reply within timeoutMs
  | "closed"; // the connection closed before the reply

export declare const SYNC_POINTS: readonly SyncPoint[];
export declare const TRANSPORT_ACTIONS: readonly TransportAction[];
export declare const EVENTS: readonly (keyof AffettoEvents)[];
/** "notes": the output every server has (the session's notes as "note" events). */
export declare const NOTES_OUTPUT: "notes";
/** The longest fade in seconds (volume, transport stop): 60. */
export declare const MAX_FADE_S: number;
/** The quadrant of a scene of the story arc: valence and arousal, each positive or negative. */
export type Scene = "+V+A" | "-V+A" | "-V-A" | "+V-A";
export declare const SCENES: readonly Scene[];

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
  /** The key, e.g. "Bb minor". */
  key: string;
  /** The layers heard in the bar (a note sounding in it), not those merely switched on. */
  layers: string[];
  /** When the bar's downbeat sounds on the session's clock. */
  time_s: number;
  session?: string;
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
  session: string;
  /** Whether the music is playing (false while paused or stopped). */
  playing: boolean;
  /** Whether it is paused (`transport("pause")`). */
  paused: boolean;
  /** While stopped: what `start` begins from (its state and emotion, bar 0). */
  state: string;
  /** Where the music is going (the target). */
  valence: number;
  arousal: number;
  tension: number;
  /** Where the music is now, seeking the target. */
  current_valence: number;
  current_arousal: number;
  current_tension: number;
  tempo_bpm: number;
  bar: number;
  /** The key, e.g. "Bb minor" ("" before the music has one). */
  key: string;
  /** The session's profile's name. */
  profile: string;
  /** The outputs this session plays into ("notes", "audio", "midi"); empty: silent. */
  outputs: string[];
  /** The profile's parameter names (`param`). */
  params: string[];
  states: string[];
  stingers: string[];
  /** The leitmotifs it can play. */
  leitmotifs: string[];
  /** Each parameter's value: the latest sent, else the profile's default (absent: neither). */
  param_values: Record<string, number>;
  /** The layers heard in the current bar. */
  layers: string[];
  /** The session's volume, [0, 1]. */
  level: number;
  /** Each layer's own volume (the effective one is level times it). */
  layer_levels: Record<string, number>;
  id?: unknown;
  [key: string]: unknown;
}

/** One note of the session (with the "notes" output): play it with your own instruments. */
export interface NoteEvent {
  event: "note";
  session: string;
  /** The layer's MIDI channel, 0..15. */
  channel: number;
  /** MIDI pitch, 0..127. */
  pitch: number;
  /** 1..127 for a note-on; 0 for a note-off. */
  velocity: number;
  /** The profile layer it belongs to ("melody", "bass", ...; "stinger" for a stinger's notes). */
  layer: string;
  /** When it sounds on the session's clock (seconds of music; the beat events' clock). */
  time_s: number;
  [key: string]: unknown;
}

/** A volume change starting (so a game playing the notes itself fades its instruments). */
export interface VolumeEvent {
  event: "volume";
  session: string;
  /** The layer; null: the whole session. */
  layer: string | null;
  /** The level it moves to, [0, 1]. */
  level: number;
  /** Over how many seconds (0: at once). */
  fade_s: number;
  /** When it starts on the session's clock. */
  time_s: number;
  [key: string]: unknown;
}

/** The reading of one line of story text sent with `text()` (to this connection only). */
export interface TextEvent {
  event: "text";
  session: string;
  /** The line's own valence, [-1, 1]. */
  valence: number;
  /** The line's own arousal, [-1, 1]. */
  arousal: number;
  /** How sure the model is of them, (0, 1]. */
  confidence: number;
  /** The session's story arc after this line (its scene): valence, [-1, 1]. */
  scene_valence: number;
  /** The scene's arousal, [-1, 1]. */
  scene_arousal: number;
  /** The scene's quadrant. */
  scene: Scene;
  /** This line began a new scene: the session's emotion moves to the scene's at `sync`, and a
   * "transition" event follows for subscribers. */
  changed: boolean;
  /** Where the change lands (the profile's transition sync point); null when not changed. */
  sync: SyncPoint | null;
  /** Seconds since the session's first line. */
  time_s: number;
  /** The id of the `text` request it answers. */
  id?: unknown;
  [key: string]: unknown;
}

/** Any event as received (what "message" handlers get). */
export interface AnyEvent {
  event: string;
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
  note: NoteEvent;
  volume: VolumeEvent;
  /** The reading of each line sent with `text()`. */
  text: TextEvent;
  /** Errors that answer no pending operation (those reject the operation's promise instead). */
  error: AffettoError;
  close: CloseEvent;
  /** Every event the server sends (replies included, and events this client has no name for). */
  message: AnyEvent;
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
  /** The profile's parameter names. */
  params: string[];
  /** The outputs this server offers ("notes" always; "audio", "midi" when it opened them). */
  available_outputs: string[];
  /** The profile's layers. */
  layer_names: string[];
  /** The session's profile's name. */
  profile: string;
  /** The leitmotifs the session can play (`leitmotif(name)`). */
  leitmotifs: string[];
  /** Each parameter's range in game units, [lo, hi] (values outside are clamped). */
  param_ranges: Record<string, [number, number]>;
  /** The profile's transition sync point (where states and parameter changes land by default). */
  sync: string;
  [key: string]: unknown;
}

/** A session open on the server. */
export interface SessionInfo {
  name: string;
  profile: string;
  /** "playing", "paused" or "stopped". */
  transport: string;
  /** How many clients share it. */
  clients: number;
}

export interface SessionsEvent {
  event: "sessions";
  names: string[];
  profiles: string[];
  sessions: SessionInfo[];
  /** Sessions open but not listed (the list holds at most 256). */
  more: number;
  id?: unknown;
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
  transport(action: "start" | "pause" | "resume"): Promise<OkReply>;
  /** Stop, after an optional fade-out of fadeS seconds in [0, 60]. */
  transport(action: "stop", fadeS?: number): Promise<OkReply>;
  transport(action: "tempo" | "seed", value: number): Promise<OkReply>;
  transport(action: "sync", value: SyncPoint): Promise<OkReply>;
  /** level in [0, 1] for the session, or for `layer`; `fadeS` in [0, 60] (absent: at once). */
  volume(level: number, options?: { fadeS?: number; layer?: string }): Promise<OkReply>;
  subscribe(): Promise<OkReply>;
  unsubscribe(): Promise<OkReply>;
  session(name: string): Promise<OkReply>;
  /** Play into these outputs ("notes", "audio", "midi"; at most 8); none: silent. */
  output(...names: string[]): Promise<OkReply>;
  /** One line of story text (1..10,000 characters); resolves with the ok, its reading comes to "text" handlers. */
  text(text: string): Promise<OkReply>;
  /** Resolves with the status event. */
  status(): Promise<StatusEvent>;
  /** Resolves with the sessions open on the server (opens none). */
  sessions(): Promise<SessionsEvent>;
  /** Authenticate (instead of the token option) and/or join a session. */
  hello(options?: { token?: string; session?: string }): Promise<HelloReply>;
}
