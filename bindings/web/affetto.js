// affetto.js: the affetto client for browsers and Node ≥ 20 (protocol version 1, WebSocket + JSON).
//
// An ES module with no dependency. In a browser it uses the global WebSocket; in Node 20 run with
// `node --experimental-websocket` (Node 22+ has the global by default) or pass any WHATWG-style
// WebSocket constructor as the `WebSocket` option.
//
//   import { AffettoClient } from "./affetto.js";
//   const affetto = new AffettoClient("ws://127.0.0.1:9001");
//   await affetto.connect();
//   affetto.on("beat", (e) => { if (e.downbeat) flash(); });
//   affetto.on("note", (n) => (n.velocity > 0 ? synth.noteOn(n.pitch, n.velocity) : synth.noteOff(n.pitch)));
//   await affetto.subscribe();
//   await affetto.output("notes");   // the session's notes as "note" events, for your own instruments
//   await affetto.emotion(0.5, -0.2);
//   affetto.on("text", (t) => { if (t.changed) console.log(`the story turns ${t.scene}`); });
//   await affetto.text("The wolf howled.");   // "ok" now; its "text" event once the line is read
//
// Every operation validates its arguments (a bad one rejects with TypeError or RangeError before
// anything is sent), then resolves with the server's `ok` reply, matched by `id`, or rejects with
// an AffettoError carrying the server's `code`. Events this client has no name for (a newer server's)
// are ignored, or seen by "message" handlers, which get every event. The protocol: bindings/PROTOCOL.md.

/** Where a change lands. */
export const SYNC_POINTS = Object.freeze(["immediate", "beat", "bar", "phrase"]);
/** Transport actions. */
export const TRANSPORT_ACTIONS = Object.freeze(["start", "stop", "pause", "resume", "tempo", "seed", "sync"]);
/** Events a handler can be registered for with `on` ("message": every event the server sends). */
export const EVENTS = Object.freeze([
  "beat", "bar", "transition", "status", "note", "volume", "text", "error", "close", "message",
]);
/** The output every server has: the session's notes as "note" events (`output(NOTES_OUTPUT)`). */
export const NOTES_OUTPUT = "notes";
/** The longest fade, in seconds (`volume` and `transport("stop", fadeS)`). */
export const MAX_FADE_S = 60;
/** The quadrants a scene of the story arc is in (a "text" event's `scene`). */
export const SCENES = Object.freeze(["+V+A", "-V+A", "-V-A", "+V-A"]);

// The server's events that go to the handlers of the same name (the rest: "message" handlers only).
const DISPATCHED = new Set(["beat", "bar", "transition", "status", "note", "volume", "text"]);

const MAX_NAME = 64;
const MAX_TEXT = 10000;
const MAX_MOTIF_NOTES = 64;
const MAX_OUTPUTS = 8;

/**
 * An error reported by the server (`code`: bad_argument, unknown_op, rate_limited, ... as in
 * PROTOCOL.md), or found by this client: "timeout" (no reply in time), "closed" (the connection
 * closed before the reply), "bad_message" (the server sent something that is not an event).
 */
export class AffettoError extends Error {
  /**
   * @param {string} code
   * @param {string} message
   * @param {object} [event] the whole error event, as received
   */
  constructor(code, message, event = {}) {
    super(`${code}: ${message}`);
    this.name = "AffettoError";
    this.code = code;
    this.op = event.op;
    this.id = event.id;
    this.event = event;
  }
}

export class AffettoClient {
  /**
   * @param {string} url the server's WebSocket URL, e.g. "ws://127.0.0.1:9001"
   * @param {{token?: string, WebSocket?: Function, timeoutMs?: number, keepAliveMs?: number}} [options]
   *   token: the shared secret (needed when the server is bound beyond loopback), sent as `?token=`;
   *   WebSocket: a WebSocket constructor (default: the global one);
   *   timeoutMs: how long an operation waits for its reply before rejecting (default 5000);
   *   keepAliveMs: after this long without a request, send a status request so the server does not
   *     expire the session of a client that only listens (default 20000; 0 disables).
   */
  constructor(url, { token, WebSocket: Ctor, timeoutMs = 5000, keepAliveMs = 20000 } = {}) {
    const parsed = new URL(url);
    if (parsed.protocol !== "ws:" && parsed.protocol !== "wss:") {
      throw new TypeError(`url must be ws:// or wss://, got ${url}`);
    }
    if (token !== undefined) {
      if (typeof token !== "string" || token === "") throw new TypeError("token must be a non-empty string");
      parsed.searchParams.set("token", token);
    }
    this.WebSocket = Ctor ?? globalThis.WebSocket;
    if (typeof this.WebSocket !== "function") {
      throw new TypeError(
        "no WebSocket constructor: pass { WebSocket } or, on Node 20, run with --experimental-websocket",
      );
    }
    if (!(Number.isFinite(timeoutMs) && timeoutMs > 0)) throw new RangeError("timeoutMs must be > 0");
    if (!(Number.isFinite(keepAliveMs) && keepAliveMs >= 0)) throw new RangeError("keepAliveMs must be >= 0");
    this.url = parsed.toString();
    this.timeoutMs = timeoutMs;
    this.keepAliveMs = keepAliveMs;
    this._lastSend = 0;
    this._keepAlive = null;
    /** @type {WebSocket | null} */
    this.socket = null;
    this._nextId = 1;
    this._pending = new Map(); // id -> {resolve, reject, timer, op}
    this._handlers = new Map(EVENTS.map((name) => [name, new Set()]));
  }

  /** Open the connection; resolves once it is open, rejects if it cannot be opened. */
  connect() {
    if (this.socket) return Promise.reject(new Error("already connected (or connecting)"));
    return new Promise((resolve, reject) => {
      const socket = new this.WebSocket(this.url);
      this.socket = socket;
      let opened = false;
      socket.addEventListener("open", () => {
        opened = true;
        this._lastSend = Date.now();
        if (this.keepAliveMs > 0) this._startKeepAlive();
        resolve();
      });
      socket.addEventListener("error", () => {
        if (!opened) reject(new Error(`cannot connect to ${this.url}`));
      });
      socket.addEventListener("close", (event) => {
        this.socket = null;
        clearInterval(this._keepAlive);
        this._keepAlive = null;
        const why = `${event.code}${event.reason ? ": " + event.reason : ""}`;
        this._failPending(new AffettoError("closed", `the connection closed (${why})`));
        if (opened) this._emit("close", { code: event.code, reason: event.reason });
        else reject(new Error(`cannot connect to ${this.url} (closed with ${event.code})`));
      });
      socket.addEventListener("message", (event) => this._receive(event.data));
    });
  }

  /** Close the connection (pending operations reject). */
  close() {
    clearInterval(this._keepAlive); // no keep-alive request into a closing socket
    this._keepAlive = null;
    if (this.socket) this.socket.close(1000, "bye");
  }

  /**
   * Register a handler for "beat" | "bar" | "transition" | "status" | "note" | "volume" | "text" |
   * "error" | "close" | "message". "text" receives the reading of each line sent with `text()`. "error" receives AffettoError objects for errors that answer no pending
   * operation (those reject the operation's promise instead). "message" receives every event the
   * server sends, replies included, before its own handlers: the way to see an event this client
   * has no name for (the others are ignored). A name not in EVENTS throws TypeError (a typo).
   * Returns a function that removes the handler.
   */
  on(event, handler) {
    const handlers = this._handlers.get(event);
    if (!handlers) throw new TypeError(`unknown event ${JSON.stringify(event)}; one of ${EVENTS.join(", ")}`);
    if (typeof handler !== "function") throw new TypeError("handler must be a function");
    handlers.add(handler);
    return () => this.off(event, handler);
  }

  /** Remove a handler registered with `on`. */
  off(event, handler) {
    this._handlers.get(event)?.delete(handler);
  }

  // ---- operations --------------------------------------------------------------------------

  /**
   * Set the emotion: valence, arousal (and optionally tension) in [-1, 1].
   * @param {{tension?: number, sync?: string, seekPerS?: number}} [options]
   *   seekPerS in (0, 100]: move there at that many units per second (absent: jump).
   */
  async emotion(valence, arousal, { tension, sync, seekPerS } = {}) {
    const message = { op: "emotion", valence: unit(valence, "valence"), arousal: unit(arousal, "arousal") };
    if (tension !== undefined) message.tension = unit(tension, "tension");
    if (sync !== undefined) message.sync = syncPoint(sync, "sync");
    if (seekPerS !== undefined) {
      finite(seekPerS, "seekPerS");
      if (!(seekPerS > 0 && seekPerS <= 100)) throw new RangeError(`seekPerS must be in (0, 100], got ${seekPerS}`);
      message.seek_per_s = seekPerS;
    }
    return this._request(message);
  }

  /** Switch to a state of the session's profile (explore, calm, stealth, ... by default). */
  async state(name, { sync } = {}) {
    const message = { op: "state", name: checkName(name, "name") };
    if (sync !== undefined) message.sync = syncPoint(sync, "sync");
    return this._request(message);
  }

  /** Set a game parameter declared in the session's profile. */
  async param(name, value) {
    return this._request({ op: "param", name: checkName(name, "name"), value: finite(value, "value") });
  }

  /** Play a stinger (hit, rise, fall, fanfare, reveal by default) on the next beat. */
  async stinger(name) {
    return this._request({ op: "stinger", name: checkName(name, "name") });
  }

  /**
   * Play a leitmotif, or register one when `notes` is given:
   * notes = [[onsetBeats, pitch, durationBeats, velocity], ...] (at most 64 notes, 4 bars).
   */
  async leitmotif(name, { sync, notes } = {}) {
    const message = { op: "leitmotif", name: checkName(name, "name") };
    if (sync !== undefined) message.sync = syncPoint(sync, "sync");
    if (notes !== undefined) message.notes = checkNotes(notes);
    return this._request(message);
  }

  /**
   * Transport: "start" (from bar 0), "pause" and "resume" take no value; "stop" an optional fade-out
   * in seconds, [0, 60] (absent: at once); "tempo" a BPM in [20, 400] or 0 (follow arousal); "seed"
   * an integer ≥ 0; "sync" a sync point.
   */
  async transport(action, value) {
    if (!TRANSPORT_ACTIONS.includes(action)) {
      throw new TypeError(`action must be one of ${TRANSPORT_ACTIONS.join(", ")}, got ${JSON.stringify(action)}`);
    }
    const message = { op: "transport", action };
    if (action === "start" || action === "pause" || action === "resume") {
      if (value !== undefined) throw new TypeError(`transport ${action} takes no value`);
    } else if (action === "stop") {
      if (value !== undefined) message.value = fade(value, "stop fade-out");
    } else if (action === "tempo") {
      finite(value, "tempo");
      if (value !== 0 && (value < 20 || value > 400)) throw new RangeError(`tempo must be 0 or in [20, 400], got ${value}`);
      message.value = value;
    } else if (action === "seed") {
      if (!Number.isSafeInteger(value) || value < 0) throw new RangeError(`seed must be an integer >= 0, got ${value}`);
      message.value = value;
    } else {
      message.value = syncPoint(value, "value");
    }
    return this._request(message);
  }

  /**
   * Set the volume: `level` in [0, 1] (linear gain; 1 is the profile's mix, 0 silent) for the whole
   * session, or for one layer of its profile with `layer`; `fadeS` in [0, 60] moves there over that
   * many seconds (absent: at once). Subscribers get a "volume" event as it starts.
   * @param {{fadeS?: number, layer?: string}} [options]
   */
  async volume(level, { fadeS, layer } = {}) {
    finite(level, "level");
    if (level < 0 || level > 1) throw new RangeError(`level must be in [0, 1], got ${level}`);
    const message = { op: "volume", level };
    if (fadeS !== undefined) message.fade_s = fade(fadeS, "fadeS");
    if (layer !== undefined) message.layer = checkName(layer, "layer");
    return this._request(message);
  }

  /** Receive events (beat, bar, transition, note, volume, ...) on this connection. */
  async subscribe() {
    return this._request({ op: "subscribe" });
  }

  /** Stop receiving events. */
  async unsubscribe() {
    return this._request({ op: "unsubscribe" });
  }

  /** Join (or create) the named session. */
  async session(name) {
    return this._request({ op: "session", name: checkName(name, "name") });
  }

  /**
   * Play this session into these outputs, at most 8 names; none for silence (events only):
   * "notes" (every server: the session's notes as "note" events to this connection, once
   * subscribed), "audio" (`affetto serve --audio`), "midi" (`--midi-port`). An output the server
   * did not open rejects with code bad_argument (its message lists the available ones).
   */
  async output(...names) {
    if (names.length > MAX_OUTPUTS) throw new RangeError(`at most ${MAX_OUTPUTS} outputs, got ${names.length}`);
    return this._request({ op: "output", outputs: names.map((name, i) => checkName(name, `outputs[${i}]`)) });
  }

  /**
   * Send one line of story text (1 to 10,000 characters); resolves with the `ok` reply. Once the
   * server has read it (a few ms later) its reading comes to the "text" handlers, with this
   * request's `id` (no subscription needed): the line's valence, arousal and confidence, and the
   * session's story arc after it (scene_valence, scene_arousal, scene, changed, sync). A line the
   * server cannot read after all comes to the "error" handlers. Rejects with code `unsupported`
   * (the server has no text emotion model), `rate_limited` (8 lines of the session waiting), `busy`.
   */
  async text(text) {
    if (typeof text !== "string") throw new TypeError("text must be a string");
    if (text.length === 0 || text.length > MAX_TEXT) {
      throw new RangeError(`text must be 1..${MAX_TEXT} characters, got ${text.length}`);
    }
    return this._request({ op: "text", text });
  }

  /**
   * The session's status: resolves with the status event (it also reaches "status" handlers):
   * playing, paused, state, emotion (valence, arousal, tension: where it is going;
   * current_valence, current_arousal, current_tension: where the music is), tempo_bpm, bar, key,
   * profile, outputs, params, states, stingers, leitmotifs, layers (those heard), level and
   * layer_levels.
   */
  async status() {
    return this._request({ op: "status" });
  }

  /**
   * Resolves with the sessions event: the sessions open on the server (`names`, `profiles`, and
   * `sessions`: {name, profile, transport, clients}; `more`: how many were not listed). Opens no
   * session: join one with `session(name)`.
   */
  async sessions() {
    return this._request({ op: "sessions" });
  }

  /**
   * Authenticate with the shared secret (instead of the `token` option) and/or join a session;
   * resolves with the hello event: the session's name, the protocol version, the profile's states,
   * stingers, params (and their param_ranges), leitmotifs, layer_names, profile and transition
   * sync point, and the server's available_outputs.
   */
  async hello({ token, session } = {}) {
    const message = { op: "hello" };
    if (token !== undefined) {
      if (typeof token !== "string" || token === "" || token.length > 256) {
        throw new TypeError("token must be a string of 1..256 characters");
      }
      message.token = token;
    }
    if (session !== undefined) message.session = checkName(session, "session");
    return this._request(message);
  }

  // ---- plumbing ----------------------------------------------------------------------------

  _request(message, { quiet = false } = {}) {
    const socket = this.socket;
    if (!socket || socket.readyState !== 1 /* OPEN */) {
      return Promise.reject(new Error("not connected: call connect() first"));
    }
    const id = this._nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this._pending.delete(id);
        reject(new AffettoError("timeout", `no reply to ${message.op} (id ${id}) within ${this.timeoutMs} ms`));
      }, this.timeoutMs);
      this._pending.set(id, { resolve, reject, timer, op: message.op, quiet });
      socket.send(JSON.stringify({ ...message, id }));
      this._lastSend = Date.now();
    });
  }

  // Sessions expire after the server's idle timeout without a request (PROTOCOL.md, Sessions):
  // a quiet status request keeps this connection's session alive while it only listens.
  _startKeepAlive() {
    const tick = Math.max(100, Math.min(this.keepAliveMs / 4, 5000));
    this._keepAlive = setInterval(() => {
      if (Date.now() - this._lastSend < this.keepAliveMs) return;
      if (this.socket?.readyState !== 1 /* OPEN */) return; // closing: "close" follows
      this._request({ op: "status" }, { quiet: true }).catch((error) => {
        if (this.socket) this._emit("error", error); // a timeout; after a close, "close" says it all
      });
    }, tick);
    this._keepAlive.unref?.(); // Node: the keep-alive alone does not keep the process running
  }

  _receive(data) {
    if (typeof data !== "string") {
      this._emit("error", new AffettoError("bad_message", "received a binary frame from the server"));
      return;
    }
    let event;
    try {
      event = JSON.parse(data);
    } catch (error) {
      if (!(error instanceof SyntaxError)) throw error;
      this._emit("error", new AffettoError("bad_message", `received invalid JSON from the server: ${error.message}`));
      return;
    }
    if (event === null || typeof event !== "object" || typeof event.event !== "string") {
      this._emit("error", new AffettoError("bad_message", `received a message without "event": ${data.slice(0, 200)}`));
      return;
    }
    const pending = this._takePending(event);
    if (pending) {
      clearTimeout(pending.timer);
      if (event.event === "error") pending.reject(new AffettoError(event.code, event.message, event));
      else pending.resolve(event);
    }
    this._emit("message", event); // after the reply is settled: a throwing handler cannot lose it
    if (pending) {
      // A requested status also reaches the "status" handlers (the keep-alive's do not).
      if (event.event !== "status" || pending.quiet) return;
    } else if (event.event === "error") {
      this._emit("error", new AffettoError(event.code, event.message, event));
      return;
    }
    if (DISPATCHED.has(event.event)) this._emit(event.event, event);
    // Any other event (a newer server's, or a reply nobody waits for any more) is ignored.
  }

  // The pending operation a reply answers: the one with its id or, for a status event without
  // one, the oldest pending status request. Events (beat, bar, ...) carry no id; a "text" event
  // carries its line's, but answers after the line's "ok" (it is never the reply).
  _takePending(event) {
    if (event.event === "text") return undefined;
    let id = event.id;
    if (id === undefined && event.event === "status") {
      id = [...this._pending].find(([, entry]) => entry.op === "status")?.[0];
    }
    const pending = id === undefined ? undefined : this._pending.get(id);
    if (pending) this._pending.delete(id);
    return pending;
  }

  _emit(name, payload) {
    for (const handler of [...this._handlers.get(name)]) handler(payload);
  }

  _failPending(error) {
    for (const { reject, timer } of this._pending.values()) {
      clearTimeout(timer);
      reject(error);
    }
    this._pending.clear();
  }
}

// ---- validation ------------------------------------------------------------------------------

function finite(value, what) {
  if (typeof value !== "number") throw new TypeError(`${what} must be a number, got ${typeof value}`);
  if (!Number.isFinite(value)) throw new RangeError(`${what} must be finite, got ${value}`);
  return value;
}

function unit(value, what) {
  finite(value, what);
  if (value < -1 || value > 1) throw new RangeError(`${what} must be in [-1, 1], got ${value}`);
  return value;
}

function fade(value, what) {
  finite(value, what);
  if (value < 0 || value > MAX_FADE_S) throw new RangeError(`${what} must be in [0, ${MAX_FADE_S}] seconds, got ${value}`);
  return value;
}

function checkName(name, what) {
  if (typeof name !== "string") throw new TypeError(`${what} must be a string`);
  if (name.length === 0 || name.length > MAX_NAME) {
    throw new RangeError(`${what} must be 1..${MAX_NAME} characters, got ${name.length}`);
  }
  return name;
}

function syncPoint(sync, what) {
  if (!SYNC_POINTS.includes(sync)) {
    throw new TypeError(`${what} must be one of ${SYNC_POINTS.join(", ")}, got ${JSON.stringify(sync)}`);
  }
  return sync;
}

function checkNotes(notes) {
  if (!Array.isArray(notes) || notes.length === 0 || notes.length > MAX_MOTIF_NOTES) {
    throw new RangeError(`notes must be an array of 1..${MAX_MOTIF_NOTES} notes`);
  }
  return notes.map((note, i) => {
    if (!Array.isArray(note) || note.length !== 4) {
      throw new TypeError(`notes[${i}] must be [onsetBeats, pitch, durationBeats, velocity]`);
    }
    const [onset, pitch, duration, velocity] = note.map((x, j) => finite(x, `notes[${i}][${j}]`));
    if (onset < 0) throw new RangeError(`notes[${i}]: onset must be >= 0`);
    if (!Number.isInteger(pitch) || pitch < 0 || pitch > 127) throw new RangeError(`notes[${i}]: pitch must be 0..127`);
    if (!(duration > 0)) throw new RangeError(`notes[${i}]: duration must be > 0`);
    if (!Number.isInteger(velocity) || velocity < 1 || velocity > 127) {
      throw new RangeError(`notes[${i}]: velocity must be 1..127`);
    }
    return [onset, pitch, duration, velocity];
  });
}
