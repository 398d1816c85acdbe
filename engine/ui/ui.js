// ui.js: affetto's live control surface. It speaks only the WebSocket protocol
// (bindings/PROTOCOL.md), through the web binding, affetto.js.
//
// The page joins a session (?session=NAME, else the first the server lists, else a new one of
// its own), subscribes to it and adds the "notes" output to what it plays into; it shows the
// session's status (polled 5 times a second: state, where the emotion is and where it goes,
// tempo, key, layers heard), its beats and bars, a piano roll of its notes and the arc of its
// emotion; it steers it (pad, tension, states, stingers, leitmotifs, parameters, story lines)
// and plays its notes with Web Audio. `window.affettoUi` holds what it measured, for tests.

import { AffettoClient, SYNC_POINTS } from "./affetto.js";
import { NoteClock, WebSynth } from "./synth.js";
import { ArcPlot, Pad, PianoRoll, layerColour } from "./views.js";

const STATUS_EVERY_MS = 200;
const SESSIONS_EVERY_MS = 2000;
const EMOTION_EVERY_MS = 40; // pad moves are sent at most this often (the last one always)
const STEP = 0.1; // arrow keys and [ ] move this much
const STINGER_KEYS = { " ": "hit", h: "hit", r: "rise", f: "fall", n: "fanfare" };
const RECONNECT_MS = 2000;
const PAD_HOLD_MS = 1000; // after a local move the pad shows its own target this long
const MAX_LINES = 100; // story lines kept on the page

const $ = (id) => document.getElementById(id);
const query = new URLSearchParams(location.search);

/** What the page knows and measured (read by the tests). */
const ui = {
  client: null,
  hello: null,
  status: null,
  session: null,
  synth: null,
  audio: null,
  clock: new NoteClock(),
  metrics: {
    notes: 0,
    beats: 0,
    downbeats: 0,
    lastBeat: null,
    transitions: [],
    texts: [],
    errors: [],
    padToNote: [], // {arrivalMs, soundMs}: a pad move to the first note of the new music
    layersSeen: [], // the layers whose notes arrived
  },
};
window.affettoUi = ui;

const pad = new Pad($("pad"), (v, a) => steer(v, a));
const roll = new PianoRoll($("roll"));
ui.roll = roll; // for tests: the notes it holds
const arc = new ArcPlot($("arc"));
let target = { valence: 0, arousal: 0, tension: 0 };
let sentAt = 0;
let movedAt = -Infinity; // the last local move of the pad (its target shows the server's after a while)
let emotionTimer = null;
let waitingMove = null; // a pad move waiting for its first note: {at (performance ms), audioAt, landed}
const sentLines = new Map(); // request id -> the line (its "text" event carries the id)
let sessionClock = { timeS: 0, stamp: performance.now() }; // the latest event's time on the session clock

function say(text, kind = "") {
  const el = $("connection");
  el.textContent = text;
  el.className = kind;
}

function fail(error) {
  ui.metrics.errors.push(String(error?.message ?? error));
  if (ui.metrics.errors.length > 50) ui.metrics.errors.shift();
  say(String(error?.message ?? error), "bad");
}

function nowSessionS() {
  const playing = ui.status?.playing ?? true;
  const ahead = playing ? Math.min(2, (performance.now() - sessionClock.stamp) / 1000) : 0;
  return sessionClock.timeS + ahead;
}

function heard(timeS) {
  if (timeS > sessionClock.timeS || timeS < sessionClock.timeS - 1) sessionClock = { timeS, stamp: performance.now() };
}

// ---- connection and sessions ----------------------------------------------------------------

async function connect() {
  const config = await (await fetch("config.json")).json();
  const url = new URL(location.href);
  url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
  url.port = String(config.ws_port);
  url.pathname = "/";
  url.search = "";
  url.hash = "";
  const token = query.get("token") || undefined;
  const client = new AffettoClient(url.toString(), { token });
  ui.client = client;
  client.on("beat", onBeat);
  client.on("note", onNote);
  client.on("transition", onTransition);
  client.on("text", onText);
  client.on("error", fail);
  client.on("close", () => {
    say("disconnected; trying again…", "bad");
    ui.client = null;
    setTimeout(() => connect().catch(retry), RECONNECT_MS);
  });
  await client.connect();
  const listed = await client.sessions();
  const wanted = query.get("session") || listed.names[0];
  await join(wanted);
  if (!polling) {
    polling = true; // once: a reconnection polls through the same timers
    setInterval(pollStatus, STATUS_EVERY_MS);
    setInterval(pollSessions, SESSIONS_EVERY_MS);
  }
  renderSessions(listed);
}

function retry(error) {
  fail(error);
  setTimeout(() => connect().catch(retry), RECONNECT_MS);
}

/** Join the session called `name` (undefined: open one of the page's own). */
async function join(name) {
  const client = ui.client;
  const hello = await client.hello(name ? { session: name } : {});
  ui.hello = hello;
  ui.session = hello.session;
  await client.subscribe();
  const status = await client.status();
  const outputs = new Set(status.outputs);
  outputs.add("notes"); // keep what it plays into; add its notes for this page
  await client.output(...outputs);
  ui.clock.reset();
  roll.clear();
  setTarget(status.valence, status.arousal, status.tension);
  buildControls(hello);
  showStatus(status);
  $("session-name").textContent = `${hello.session} · ${hello.profile}`;
  say(`connected · session ${hello.session}`, "ok");
  pollSessions();
}

let polling = false;
let statusBusy = false;
async function pollStatus() {
  if (!ui.client || statusBusy) return;
  statusBusy = true;
  try {
    showStatus(await ui.client.status());
  } catch (error) {
    if (ui.client) fail(error);
  } finally {
    statusBusy = false;
  }
}

async function pollSessions() {
  if (!ui.client) return;
  try {
    renderSessions(await ui.client.sessions());
  } catch (error) {
    if (ui.client) fail(error);
  }
}

function renderSessions(listed) {
  const list = $("sessions");
  list.replaceChildren(
    ...listed.sessions.map((s) => {
      const li = document.createElement("li");
      const label = document.createElement("span");
      label.textContent = `${s.name} · ${s.profile}${s.transport === "playing" ? "" : ` (${s.transport})`}`;
      li.append(label);
      if (s.name === ui.session) {
        li.className = "mine";
        const here = document.createElement("span");
        here.textContent = "here";
        li.append(here);
      } else {
        const button = document.createElement("button");
        button.type = "button";
        button.textContent = "Join";
        button.setAttribute("aria-label", `join ${s.name}`);
        button.addEventListener("click", () => join(s.name).catch(fail));
        li.append(button);
      }
      return li;
    }),
  );
  if (listed.more > 0) {
    const li = document.createElement("li");
    li.textContent = `and ${listed.more} more`;
    list.append(li);
  }
}

// ---- what the session does -------------------------------------------------------------------

function fmt(x) {
  return (x >= 0 ? "+" : "") + x.toFixed(2);
}

function showStatus(s) {
  ui.status = s;
  $("state").textContent = s.state;
  $("tempo").textContent = `${s.tempo_bpm.toFixed(1)} BPM`;
  $("key").textContent = s.key || "–";
  for (const dim of ["valence", "arousal", "tension"]) {
    $(`cur-${dim}`).textContent = fmt(s[`current_${dim}`]);
    $(`tgt-${dim}`).textContent = fmt(s[dim]);
  }
  pad.setCurrent(s.current_valence, s.current_arousal);
  if (performance.now() - movedAt > PAD_HOLD_MS) {
    // the target as the server has it (a state, a parameter, the story or another client moved it)
    target = { valence: s.valence, arousal: s.arousal, tension: s.tension };
    pad.setTarget(s.valence, s.arousal);
    if (document.activeElement !== $("tension")) $("tension").value = String(s.tension);
  }
  arc.add(performance.now() / 1000, s);
  const sounding = new Set(s.layers);
  for (const chip of $("layers").children) chip.classList.toggle("on", sounding.has(chip.dataset.layer));
  for (const chip of $("layers").children) chip.style.background = chip.classList.contains("on") ? layerColour(chip.dataset.layer) : "";
  for (const b of $("states").children) b.classList.toggle("current", b.dataset.name === s.state);
  for (const input of $("params").querySelectorAll("input[data-param]")) {
    const value = s.param_values?.[input.dataset.param];
    if (value !== undefined && document.activeElement !== input) {
      input.value = String(value); // another client (the game) may have moved it
      input.nextElementSibling.textContent = Number(value).toFixed(2);
    }
  }
  if (!s.playing) $("position").textContent = s.paused ? "paused" : "stopped";
}

let lampTimer = null;
function onBeat(e) {
  ui.metrics.beats += 1;
  ui.metrics.lastBeat = { bar: e.bar, beat: e.beat, downbeat: e.downbeat, at: performance.now() };
  if (e.downbeat) ui.metrics.downbeats += 1;
  heard(e.time_s);
  $("position").textContent = `${e.bar + 1}:${e.beat + 1}`;
  const lamp = $("downbeat");
  lamp.className = e.downbeat ? "lamp on" : "lamp beat";
  clearTimeout(lampTimer);
  lampTimer = setTimeout(() => (lamp.className = "lamp"), 120);
}

function onNote(e) {
  heard(e.time_s);
  roll.add(e);
  if (e.velocity > 0) ui.metrics.notes += 1;
  if (!ui.metrics.layersSeen.includes(e.layer)) ui.metrics.layersSeen.push(e.layer);
  let soundAt = null;
  if (ui.synth && ui.audio.state === "running") {
    soundAt = ui.clock.at(e.time_s, ui.audio.currentTime);
    if (e.velocity > 0) ui.synth.noteOn(soundAt, e.channel, e.pitch, e.velocity, e.layer);
    else ui.synth.noteOff(soundAt, e.channel, e.pitch);
  }
  if (waitingMove?.landed && e.velocity > 0) {
    const arrivalMs = performance.now() - waitingMove.at;
    const soundMs = soundAt !== null && waitingMove.audioAt !== null ? (soundAt - waitingMove.audioAt) * 1000 : null;
    ui.metrics.padToNote.push({ arrivalMs, soundMs });
    if (ui.metrics.padToNote.length > 1000) ui.metrics.padToNote.shift();
    waitingMove = null;
  }
}

function onTransition(e) {
  ui.metrics.transitions.push({ op: e.op, beat: e.beat, at: performance.now() });
  if (ui.metrics.transitions.length > 200) ui.metrics.transitions.shift();
  if (waitingMove && e.op === "emotion") waitingMove.landed = true;
}

function onText(e) {
  ui.metrics.texts.push(e);
  if (ui.metrics.texts.length > MAX_LINES) ui.metrics.texts.shift();
  const li = document.createElement("li");
  const line = sentLines.get(e.id) ?? "";
  sentLines.delete(e.id);
  li.textContent = `${line}  — line V ${fmt(e.valence)} A ${fmt(e.arousal)} · scene ${e.scene}` +
    (e.changed ? ` · the music turns (${e.sync})` : "");
  if (e.changed) {
    li.className = "changed";
    arc.mark(performance.now() / 1000, e.scene);
  }
  $("lines").prepend(li);
  while ($("lines").children.length > MAX_LINES) $("lines").lastChild.remove();
}

// ---- steering ------------------------------------------------------------------------------

function setTarget(v, a, t = target.tension) {
  target = { valence: v, arousal: a, tension: t };
  pad.setTarget(v, a);
  $("tension").value = String(t);
}

function steer(v, a) {
  setTarget(v, a);
  movedAt = performance.now();
  waitingMove = { at: performance.now(), audioAt: ui.audio?.state === "running" ? ui.audio.currentTime : null, landed: false };
  const wait = EMOTION_EVERY_MS - (performance.now() - sentAt);
  clearTimeout(emotionTimer);
  if (wait <= 0) sendEmotion();
  else emotionTimer = setTimeout(sendEmotion, wait);
}

function sendEmotion() {
  if (!ui.client) return;
  sentAt = performance.now();
  const { valence, arousal, tension } = target;
  ui.client.emotion(valence, arousal, { tension, sync: $("sync").value }).catch(fail);
}

function button(label, onClick, extra = {}) {
  const b = document.createElement("button");
  b.type = "button";
  b.textContent = label;
  Object.assign(b.dataset, extra);
  b.addEventListener("click", () => onClick().catch(fail));
  return b;
}

function buildControls(hello) {
  const sync = () => $("sync").value;
  const themeSync = () => (sync() === "immediate" ? "beat" : sync()); // a theme starts on a beat at the soonest
  $("states").replaceChildren(
    ...hello.states.map((name, i) =>
      button(i < 8 ? `${i + 1} ${name}` : name, () => ui.client.state(name, { sync: sync() }), { name }),
    ),
  );
  $("stingers").replaceChildren(...hello.stingers.map((name) => button(name, () => ui.client.stinger(name), { name })));
  $("leitmotifs").replaceChildren(
    ...(hello.leitmotifs.length
      ? hello.leitmotifs.map((name) => button(name, () => ui.client.leitmotif(name, { sync: themeSync() }), { name }))
      : [Object.assign(document.createElement("span"), { className: "dim", textContent: "none registered" })]),
  );
  const params = Object.entries(hello.param_ranges);
  $("params").replaceChildren(
    ...(params.length
      ? params.map(([name, [lo, hi]]) => {
          const label = document.createElement("label");
          const input = Object.assign(document.createElement("input"), { type: "range", min: lo, max: hi, step: (hi - lo) / 100, value: lo });
          input.dataset.param = name;
          const shown = document.createElement("output");
          shown.textContent = String(lo);
          input.addEventListener("input", () => {
            shown.textContent = Number(input.value).toFixed(2);
            ui.client.param(name, Number(input.value)).catch(fail);
          });
          label.append(Object.assign(document.createElement("span"), { textContent: name }), input, shown);
          return label;
        })
      : [Object.assign(document.createElement("span"), { className: "dim", textContent: "this profile declares none" })]),
  );
  $("layers").replaceChildren(
    ...hello.layer_names.map((name) => {
      const chip = Object.assign(document.createElement("span"), { className: "chip", textContent: name });
      chip.dataset.layer = name;
      return chip;
    }),
  );
  $("legend").replaceChildren(
    ...hello.layer_names.map((name) => {
      const chip = Object.assign(document.createElement("span"), { className: "chip on", textContent: name });
      chip.style.background = layerColour(name);
      return chip;
    }),
  );
}

async function toggleAudio() {
  const b = $("audio");
  if (!ui.audio) {
    ui.audio = new AudioContext({ latencyHint: "interactive" });
    ui.synth = new WebSynth(ui.audio);
    ui.synth.setVolume(Number($("volume").value));
  }
  if (ui.audio.state === "running" && b.getAttribute("aria-pressed") === "true") {
    ui.synth.allOff(ui.audio.currentTime);
    await ui.audio.suspend();
    b.setAttribute("aria-pressed", "false");
    b.textContent = "Hear it";
    return;
  }
  await ui.audio.resume();
  ui.clock.reset();
  b.setAttribute("aria-pressed", "true");
  b.textContent = "Hearing";
}

// ---- wiring ----------------------------------------------------------------------------------

$("audio").addEventListener("click", () => toggleAudio().catch(fail));
$("volume").addEventListener("input", () => ui.synth?.setVolume(Number($("volume").value)));
$("tension").addEventListener("input", () => {
  target.tension = Number($("tension").value);
  steer(target.valence, target.arousal);
});
for (const b of document.querySelectorAll("[data-transport]")) {
  b.addEventListener("click", () => {
    const action = b.dataset.transport;
    if (action === "start") {
      ui.clock.reset();
      roll.clear();
    }
    ui.client?.transport(action).catch(fail);
  });
}
$("new-session").addEventListener("submit", (event) => {
  event.preventDefault();
  const name = $("new-name").value.trim();
  if (name) join(name).catch(fail);
});
$("story-form").addEventListener("submit", (event) => {
  event.preventDefault();
  sendLine();
});
$("line").addEventListener("keydown", (event) => {
  if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
    event.preventDefault();
    sendLine();
  }
});

function sendLine() {
  const text = $("line").value.trim();
  if (!text || !ui.client) return;
  ui.client
    .text(text)
    .then((ok) => {
      sentLines.set(ok.id, text.length > 80 ? `${text.slice(0, 77)}…` : text);
      if (sentLines.size > MAX_LINES) sentLines.delete(sentLines.keys().next().value);
      $("line").value = "";
    })
    .catch(fail);
}

document.addEventListener("keydown", (event) => {
  const el = event.target;
  if (el instanceof HTMLInputElement || el instanceof HTMLTextAreaElement || el instanceof HTMLSelectElement) return;
  if (el instanceof HTMLButtonElement && (event.key === " " || event.key === "Enter")) return;
  if (event.ctrlKey || event.metaKey || event.altKey || !ui.client || !ui.hello) return;
  const arrows = { ArrowLeft: [-STEP, 0], ArrowRight: [STEP, 0], ArrowUp: [0, STEP], ArrowDown: [0, -STEP] };
  const clampUnit = (x) => Math.round(Math.min(1, Math.max(-1, x)) * 100) / 100;
  let handled = true;
  if (event.key in arrows) {
    const [dv, da] = arrows[event.key];
    steer(clampUnit(target.valence + dv), clampUnit(target.arousal + da));
  } else if (event.key === "[" || event.key === "]") {
    target.tension = clampUnit(target.tension + (event.key === "]" ? STEP : -STEP));
    $("tension").value = String(target.tension);
    steer(target.valence, target.arousal);
  } else if (/^[1-8]$/.test(event.key) && Number(event.key) <= ui.hello.states.length) {
    const name = ui.hello.states[Number(event.key) - 1];
    ui.client.state(name, { sync: $("sync").value }).catch(fail);
  } else if (event.key in STINGER_KEYS && ui.hello.stingers.includes(STINGER_KEYS[event.key])) {
    ui.client.stinger(STINGER_KEYS[event.key]).catch(fail);
  } else if (event.key === "i") {
    const i = SYNC_POINTS.indexOf($("sync").value);
    $("sync").value = SYNC_POINTS[(i + 1) % SYNC_POINTS.length];
  } else if (event.key === "a") {
    toggleAudio().catch(fail);
  } else if (event.key === "p") {
    ui.client.transport(ui.status?.paused ? "resume" : "pause").catch(fail);
  } else {
    handled = false;
  }
  if (handled) event.preventDefault();
});

// Drawing is most of the page's CPU: the roll scrolls at 30 frames a second, the arc (3 minutes
// across) moves 2 times a second, the pad only when it changed.
const ROLL_EVERY_MS = 1000 / 30;
const ARC_EVERY_MS = 500;
let rollDrawn = 0;
let arcDrawn = 0;
function frame(now) {
  if (pad.changed) pad.draw();
  if (now - rollDrawn >= ROLL_EVERY_MS - 1) {
    rollDrawn = now;
    roll.draw(nowSessionS());
  }
  if (now - arcDrawn >= ARC_EVERY_MS) {
    arcDrawn = now;
    arc.draw(performance.now() / 1000);
  }
  requestAnimationFrame(frame);
}
requestAnimationFrame(frame);
connect().catch(retry);
