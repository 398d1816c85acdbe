// synth.js: hear a session in the browser: the "notes" output played with Web Audio.
//
// Notes arrive over the network when they sound on the server, with the network's jitter; each
// carries `time_s`, when it sounds on the session's clock. NoteClock maps that clock onto the
// AudioContext's with a small buffer, so notes are scheduled at their own times and keep time
// (a late packet moves the buffer up, never a note out of place), and WebSynth plays them: a
// small subtractive synth, one timbre per layer, percussion on channel 10 (index 9).

/** Seconds of margin past the latest arrival seen lately (the network's and the page's jitter). */
export const JITTER_MARGIN_S = 0.02;
/** How long an arrival counts as "lately", seconds of session time. */
const JITTER_WINDOW_S = 3;
/** The most the mapping moves earlier per note, seconds (so the music never jumps ahead). */
const SHRINK_PER_NOTE_S = 0.002;
/** Voices sounding at once; past it the oldest is released. */
export const MAX_VOICES = 48;
const DRUM_CHANNEL = 9;

/**
 * Maps a session's `time_s` onto an AudioContext's `currentTime`: a note sounds at its session
 * time plus an offset that is the latest arrival of the last few seconds plus a margin (an
 * adaptive jitter buffer): notes keep their spacing however unevenly they arrive, and the
 * latency is what the network's jitter needs, no more. A note later than that moves the offset
 * up at once (it is counted in `late`); the offset comes back down gradually.
 */
export class NoteClock {
  constructor(marginS = JITTER_MARGIN_S, windowS = JITTER_WINDOW_S) {
    this.marginS = marginS;
    this.windowS = windowS;
    this.offsetS = null; // audio time - session time
    this.lastTimeS = -Infinity;
    this.recent = []; // [timeS, arrival] of the last windowS seconds
    this.late = 0;
  }

  reset() {
    this.offsetS = null;
    this.lastTimeS = -Infinity;
    this.recent = [];
  }

  /**
   * The audio time at which a note of session time `timeS` sounds, given the audio clock now.
   * @param {number} timeS
   * @param {number} nowAudioS
   */
  at(timeS, nowAudioS) {
    if (timeS < this.lastTimeS - 1) this.reset(); // the session started again from 0
    const arrival = nowAudioS - timeS;
    this.recent.push([timeS, arrival]);
    while (this.recent[0][0] < timeS - this.windowS) this.recent.shift();
    let worst = arrival;
    for (const [, a] of this.recent) worst = Math.max(worst, a);
    const wanted = worst + this.marginS;
    if (this.offsetS === null) this.offsetS = wanted;
    else if (arrival > this.offsetS) {
      this.offsetS = wanted; // it would sound late: up at once
      this.late += 1;
    } else if (wanted > this.offsetS) this.offsetS = wanted;
    else this.offsetS = Math.max(wanted, this.offsetS - SHRINK_PER_NOTE_S);
    this.lastTimeS = Math.max(this.lastTimeS, timeS);
    return timeS + this.offsetS;
  }
}

const TIMBRES = {
  melody: { wave: "triangle", cutoffHz: 5000, gain: 0.22, releaseS: 0.18 },
  harmony: { wave: "sine", cutoffHz: 2500, gain: 0.14, releaseS: 0.35 },
  bass: { wave: "sawtooth", cutoffHz: 700, gain: 0.18, releaseS: 0.12 },
  other: { wave: "triangle", cutoffHz: 3000, gain: 0.16, releaseS: 0.2 },
};

function hz(pitch) {
  return 440 * 2 ** ((pitch - 69) / 12);
}

/** A small polyphonic synth on a Web Audio context (an AudioContext or an OfflineAudioContext). */
export class WebSynth {
  /** @param {BaseAudioContext} ctx */
  constructor(ctx, { maxVoices = MAX_VOICES } = {}) {
    this.ctx = ctx;
    this.maxVoices = maxVoices;
    this.master = ctx.createGain();
    this.master.gain.value = 0.7;
    const limiter = ctx.createDynamicsCompressor();
    limiter.threshold.value = -10;
    limiter.ratio.value = 8;
    this.analyser = ctx.createAnalyser();
    this.analyser.fftSize = 2048;
    this.master.connect(limiter).connect(this.analyser).connect(ctx.destination);
    this.voices = new Map(); // channel * 128 + pitch -> voice
    this._scratch = new Float32Array(this.analyser.fftSize);
    const noise = ctx.createBuffer(1, ctx.sampleRate, ctx.sampleRate);
    const data = noise.getChannelData(0);
    let seed = 12345;
    for (let i = 0; i < data.length; i += 1) {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      data[i] = seed / 0x3fffffff - 1;
    }
    this.noise = noise;
  }

  /** The master volume, 0..1 (linear), reached within a few ms. */
  setVolume(level) {
    const v = Math.min(1, Math.max(0, Number(level) || 0));
    this.master.gain.setTargetAtTime(v, this.ctx.currentTime, 0.01);
  }

  /** Root mean square of the output just now (0: silence). */
  level() {
    this.analyser.getFloatTimeDomainData(this._scratch);
    let sum = 0;
    for (const x of this._scratch) sum += x * x;
    return Math.sqrt(sum / this._scratch.length);
  }

  /** Start a note at audio time `t` (velocity 1..127). */
  noteOn(t, channel, pitch, velocity, layer) {
    const when = Math.max(t, this.ctx.currentTime);
    if (channel === DRUM_CHANNEL) {
      this._drum(when, pitch, velocity);
      return;
    }
    const key = channel * 128 + pitch;
    this.noteOff(when, channel, pitch);
    if (this.voices.size >= this.maxVoices) {
      const [oldest] = this.voices.keys();
      const v = this.voices.get(oldest);
      this._release(v, when);
      this.voices.delete(oldest);
    }
    const timbre = TIMBRES[layer] ?? TIMBRES.other;
    const ctx = this.ctx;
    const osc = ctx.createOscillator();
    osc.type = timbre.wave;
    osc.frequency.value = hz(pitch);
    const filter = ctx.createBiquadFilter();
    filter.type = "lowpass";
    filter.frequency.value = timbre.cutoffHz;
    const amp = ctx.createGain();
    const peak = timbre.gain * (velocity / 127) ** 2;
    amp.gain.setValueAtTime(0, when);
    amp.gain.linearRampToValueAtTime(peak, when + 0.008);
    amp.gain.setTargetAtTime(peak * 0.6, when + 0.008, 0.15);
    osc.connect(filter).connect(amp).connect(this.master);
    osc.start(when);
    this.voices.set(key, { osc, amp, releaseS: timbre.releaseS });
  }

  /** End a note at audio time `t`. */
  noteOff(t, channel, pitch) {
    const key = channel * 128 + pitch;
    const v = this.voices.get(key);
    if (v === undefined) return;
    this.voices.delete(key);
    this._release(v, Math.max(t, this.ctx.currentTime));
  }

  /** End every note at audio time `t`. */
  allOff(t) {
    for (const v of this.voices.values()) this._release(v, Math.max(t, this.ctx.currentTime));
    this.voices.clear();
  }

  _release(v, when) {
    v.amp.gain.cancelScheduledValues(when);
    v.amp.gain.setTargetAtTime(0, when, v.releaseS / 4);
    v.osc.stop(when + v.releaseS * 2);
  }

  _drum(when, pitch, velocity) {
    const ctx = this.ctx;
    const peak = 0.5 * (velocity / 127) ** 2;
    const amp = ctx.createGain();
    amp.connect(this.master);
    if (pitch === 35 || pitch === 36) { // kick: a falling sine
      const osc = ctx.createOscillator();
      osc.frequency.setValueAtTime(150, when);
      osc.frequency.exponentialRampToValueAtTime(45, when + 0.12);
      amp.gain.setValueAtTime(peak, when);
      amp.gain.exponentialRampToValueAtTime(0.001, when + 0.3);
      osc.connect(amp);
      osc.start(when);
      osc.stop(when + 0.32);
      return;
    }
    const hat = pitch === 42 || pitch === 44 || pitch === 46;
    const snare = pitch === 38 || pitch === 40 || pitch === 37 || pitch === 39;
    const src = ctx.createBufferSource();
    src.buffer = this.noise;
    const filter = ctx.createBiquadFilter();
    filter.type = hat ? "highpass" : "bandpass";
    filter.frequency.value = hat ? 7000 : snare ? 1800 : 3000;
    const length = hat ? (pitch === 46 ? 0.25 : 0.05) : snare ? 0.18 : 0.12;
    amp.gain.setValueAtTime(peak * (hat ? 0.5 : 1), when);
    amp.gain.exponentialRampToValueAtTime(0.001, when + length);
    src.connect(filter).connect(amp);
    src.start(when);
    src.stop(when + length + 0.02);
  }
}

/**
 * Render notes offline and return the rendered samples' RMS (how a test proves the synth sounds).
 * @param {Array<{t: number, channel: number, pitch: number, velocity: number, layer: string}>} notes
 *   note-ons and note-offs (velocity 0) with `t` in seconds from the render's start.
 */
export async function renderOffline(notes, seconds = 2, sampleRate = 22050) {
  const ctx = new OfflineAudioContext(1, Math.ceil(seconds * sampleRate), sampleRate);
  const synth = new WebSynth(ctx);
  for (const n of notes) {
    if (n.velocity > 0) synth.noteOn(n.t, n.channel, n.pitch, n.velocity, n.layer);
    else synth.noteOff(n.t, n.channel, n.pitch);
  }
  synth.allOff(seconds - 0.05);
  const buffer = await ctx.startRendering();
  const data = buffer.getChannelData(0);
  let sum = 0;
  for (const x of data) sum += x * x;
  return Math.sqrt(sum / data.length);
}
