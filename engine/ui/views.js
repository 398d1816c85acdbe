// views.js: the control surface's canvases: the valence–arousal pad, the piano roll, the arc.

/** A colour per layer (the default profile's names; others take the spare ones in turn). */
const LAYER_COLOURS = { melody: "#f0b44c", harmony: "#6fa8dc", bass: "#93c47d", drums: "#e06666" };
const SPARE_COLOURS = ["#c27ba0", "#76a5af", "#ffd966", "#b4a7d6", "#f6b26b"];

const spare = new Map(); // layer -> its spare colour, given once, so every view agrees

export function layerColour(layer) {
  if (LAYER_COLOURS[layer]) return LAYER_COLOURS[layer];
  if (!spare.has(layer)) spare.set(layer, SPARE_COLOURS[spare.size % SPARE_COLOURS.length]);
  return spare.get(layer);
}

/** Size a canvas's pixels to its displayed size (crisp on any width and pixel ratio). */
function fit(canvas) {
  const ratio = window.devicePixelRatio || 1;
  const w = Math.round(canvas.clientWidth * ratio);
  const h = Math.round(canvas.clientHeight * ratio);
  if (w > 0 && h > 0 && (canvas.width !== w || canvas.height !== h)) {
    canvas.width = w;
    canvas.height = h;
  }
}

function clamp(x, lo = -1, hi = 1) {
  return Math.min(hi, Math.max(lo, x));
}

/** A two-dimensional pad: x valence, y arousal (up is more), both in [-1, 1]. */
export class Pad {
  /**
   * @param {HTMLCanvasElement} canvas
   * @param {(valence: number, arousal: number) => void} onMove called as the pointer moves it
   */
  constructor(canvas, onMove) {
    this.canvas = canvas;
    this.onMove = onMove;
    this.target = { valence: 0, arousal: 0 };
    this.current = { valence: 0, arousal: 0 };
    this.trail = [];
    this.changed = true; // draw() is due
    let dragging = false;
    const move = (event) => {
      const r = canvas.getBoundingClientRect();
      const v = clamp(((event.clientX - r.left) / r.width) * 2 - 1);
      const a = clamp(1 - ((event.clientY - r.top) / r.height) * 2);
      this.setTarget(v, a);
      this.onMove(v, a);
    };
    canvas.addEventListener("pointerdown", (event) => {
      dragging = true;
      canvas.setPointerCapture(event.pointerId);
      move(event);
    });
    canvas.addEventListener("pointermove", (event) => dragging && move(event));
    canvas.addEventListener("pointerup", () => (dragging = false));
    canvas.addEventListener("pointercancel", () => (dragging = false));
  }

  setTarget(valence, arousal) {
    if (valence !== this.target.valence || arousal !== this.target.arousal) this.changed = true;
    this.target = { valence, arousal };
    this.canvas.setAttribute("aria-valuetext", `valence ${valence.toFixed(2)}, arousal ${arousal.toFixed(2)}`);
  }

  setCurrent(valence, arousal) {
    if (valence === this.current.valence && arousal === this.current.arousal) return;
    this.changed = true;
    this.current = { valence, arousal };
    this.trail.push({ valence, arousal });
    if (this.trail.length > 60) this.trail.shift();
  }

  draw() {
    this.changed = false;
    const c = this.canvas.getContext("2d");
    const w = this.canvas.width;
    const h = this.canvas.height;
    const x = (v) => ((v + 1) / 2) * w;
    const y = (a) => ((1 - a) / 2) * h;
    c.clearRect(0, 0, w, h);
    c.strokeStyle = "#2c313a";
    c.beginPath();
    c.moveTo(w / 2, 0); c.lineTo(w / 2, h); c.moveTo(0, h / 2); c.lineTo(w, h / 2);
    c.stroke();
    c.fillStyle = "#5b6270";
    c.font = "11px system-ui, sans-serif";
    c.fillText("tense −V+A", 6, 14);
    c.fillText("excited +V+A", w - 78, 14);
    c.fillText("sad −V−A", 6, h - 6);
    c.fillText("calm +V−A", w - 62, h - 6);
    c.fillText("valence →", w / 2 + 4, h / 2 - 4);
    c.strokeStyle = "rgba(240,180,76,0.35)";
    c.beginPath();
    this.trail.forEach((p, i) => (i ? c.lineTo(x(p.valence), y(p.arousal)) : c.moveTo(x(p.valence), y(p.arousal))));
    c.stroke();
    c.fillStyle = "#f0b44c";
    c.beginPath();
    c.arc(x(this.target.valence), y(this.target.arousal), 6, 0, 2 * Math.PI);
    c.fill();
    c.strokeStyle = "#e6e6e6";
    c.lineWidth = 2;
    c.beginPath();
    c.arc(x(this.current.valence), y(this.current.arousal), 9, 0, 2 * Math.PI);
    c.stroke();
    c.lineWidth = 1;
  }
}

/** The notes of the last seconds, by layer, scrolling right to left on the session's clock. */
export class PianoRoll {
  constructor(canvas, { windowS = 8, maxNotes = 3000 } = {}) {
    this.canvas = canvas;
    this.windowS = windowS;
    this.maxNotes = maxNotes;
    this.notes = []; // {on, off (null: sounding), pitch, channel, layer}
    this.sounding = new Map(); // channel * 128 + pitch -> note
    this.received = 0;
  }

  /** A `note` event (velocity 0: off). */
  add(e) {
    const key = e.channel * 128 + e.pitch;
    const open = this.sounding.get(key);
    if (open) {
      open.off = e.time_s;
      this.sounding.delete(key);
    }
    if (e.velocity > 0) {
      const note = { on: e.time_s, off: e.channel === 9 ? e.time_s + 0.1 : null, pitch: e.pitch, channel: e.channel, layer: e.layer };
      this.notes.push(note);
      if (e.channel !== 9) this.sounding.set(key, note);
      this.received += 1;
    }
    if (this.notes.length > this.maxNotes) this.notes.splice(0, this.notes.length - this.maxNotes);
  }

  clear() {
    this.notes = [];
    this.sounding.clear();
  }

  /** Draw with `nowS` (the session's clock now) at the right edge. */
  draw(nowS) {
    fit(this.canvas);
    const c = this.canvas.getContext("2d");
    const w = this.canvas.width;
    const h = this.canvas.height;
    const lo = 24;
    const hi = 108;
    const from = nowS - this.windowS;
    c.clearRect(0, 0, w, h);
    c.strokeStyle = "#22262d";
    for (let p = lo; p <= hi; p += 12) {
      const yy = h - ((p - lo) / (hi - lo)) * h;
      c.beginPath(); c.moveTo(0, yy); c.lineTo(w, yy); c.stroke();
    }
    this.notes = this.notes.filter((n) => n.off === null || n.off > from - 1);
    for (const n of this.notes) {
      const end = n.off ?? nowS;
      if (end < from) continue;
      const x0 = ((n.on - from) / this.windowS) * w;
      const x1 = ((end - from) / this.windowS) * w;
      const yy = h - ((clamp(n.pitch, lo, hi) - lo) / (hi - lo)) * h;
      c.fillStyle = layerColour(n.layer);
      c.fillRect(x0, yy - 2, Math.max(2, x1 - x0 - 1), 4); // a gap: repeated notes stay apart
    }
  }
}

/** Valence and arousal over the last minutes: where the music is (solid) and goes (dashed). */
export class ArcPlot {
  constructor(canvas, { windowS = 180 } = {}) {
    this.canvas = canvas;
    this.windowS = windowS;
    this.samples = []; // {t, cv, ca, tv, ta}
    this.marks = []; // {t, label}: story scene changes
  }

  add(t, s) {
    this.samples.push({ t, cv: s.current_valence, ca: s.current_arousal, tv: s.valence, ta: s.arousal });
    while (this.samples.length && this.samples[0].t < t - this.windowS) this.samples.shift();
  }

  mark(t, label) {
    this.marks.push({ t, label });
    while (this.marks.length && this.marks[0].t < t - this.windowS) this.marks.shift();
  }

  draw(nowS) {
    fit(this.canvas);
    const c = this.canvas.getContext("2d");
    const w = this.canvas.width;
    const h = this.canvas.height;
    const x = (t) => ((t - (nowS - this.windowS)) / this.windowS) * w;
    const y = (v) => ((1 - v) / 2) * (h - 16) + 8;
    c.clearRect(0, 0, w, h);
    c.strokeStyle = "#2c313a";
    c.beginPath(); c.moveTo(0, y(0)); c.lineTo(w, y(0)); c.stroke();
    const line = (key, colour, dashed) => {
      c.strokeStyle = colour;
      c.setLineDash(dashed ? [4, 4] : []);
      c.beginPath();
      this.samples.forEach((s, i) => (i ? c.lineTo(x(s.t), y(s[key])) : c.moveTo(x(s.t), y(s[key]))));
      c.stroke();
    };
    line("tv", "rgba(240,180,76,0.5)", true);
    line("ta", "rgba(111,168,220,0.5)", true);
    line("cv", "#f0b44c", false);
    line("ca", "#6fa8dc", false);
    c.setLineDash([]);
    c.fillStyle = "#8b93a1";
    c.font = "11px system-ui, sans-serif";
    c.fillText("valence", 6, 12);
    c.fillStyle = "#6fa8dc";
    c.fillText("arousal", 56, 12);
    for (const m of this.marks) {
      c.strokeStyle = "#8b93a1";
      c.beginPath(); c.moveTo(x(m.t), 0); c.lineTo(x(m.t), h); c.stroke();
      c.fillStyle = "#e6e6e6";
      c.fillText(m.label, x(m.t) + 3, h - 4);
    }
  }
}
