// Drives the control surface (affetto serve --ui) in headless Chromium with Playwright, as a
// person would: pointer on the pad, clicks, keys, typing. What the page did is read back over
// the protocol by a second client (affetto.js from Node), and what it heard from its Web Audio
// graph. Prints one JSON object of observations; tests/ui/test_control_surface.py asserts them.
//
//   node [--experimental-websocket] control_surface.mjs PAGE_URL WS_URL OUT_DIR [MOVES]
//
// MOVES (default 3): pad moves timed from the move to the first note of the new music (more
// for a measurement: `affetto bench ui` passes 40).

import { chromium } from "playwright-core";
import { AffettoClient } from "../../bindings/web/affetto.js";

const [pageUrl, wsUrl, outDir, movesArg] = process.argv.slice(2);
const MOVES = Number(movesArg ?? 3);
const CHROMIUM = process.env.AFFETTO_CHROMIUM ?? "/usr/bin/chromium";
const out = { consoleErrors: [], steps: [] };

function step(name, data = {}) {
  out.steps.push(name);
  Object.assign(out, data);
}

async function until(what, fn, timeoutMs = 10000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await fn();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const browser = await chromium.launch({
  executablePath: CHROMIUM,
  args: ["--no-sandbox", "--autoplay-policy=no-user-gesture-required"],
});
const watcher = new AffettoClient(wsUrl, { keepAliveMs: 0 });
try {
  const context = await browser.newContext({ viewport: { width: 1366, height: 860 } });
  const page = await context.newPage();
  page.on("console", (m) => m.type() === "error" && out.consoleErrors.push(m.text()));
  page.on("pageerror", (e) => out.consoleErrors.push(String(e)));
  const ui = (fn, arg) => page.evaluate(fn, arg);

  // ---- load: the page connects and shows its session
  const t0 = Date.now();
  await page.goto(pageUrl, { waitUntil: "load" });
  const session = await until("the page's session", () => ui(() => window.affettoUi.status && window.affettoUi.session));
  const load = await ui(() => {
    const nav = performance.getEntriesByType("navigation")[0];
    const resources = performance.getEntriesByType("resource");
    const bytes = nav.encodedBodySize + resources.reduce((sum, r) => sum + r.encodedBodySize, 0);
    return { bytes, files: 1 + resources.length, loadMs: nav.loadEventEnd - nav.startTime };
  });
  step("connected", { session, load, connectMs: Date.now() - t0 });
  step("shown", { shownSession: await page.textContent("#session-name"), shownState: await page.textContent("#state") });

  // ---- the protocol's view of the same session
  await watcher.connect();
  await watcher.hello({ session });
  const listed = await watcher.sessions();
  step("listed", { listed: listed.names });

  // ---- the beat lamp follows beats: sample the lamp's class for 3 s
  const lamp = await ui(
    () =>
      new Promise((resolve) => {
        const seen = { on: 0, beat: 0, samples: 0 };
        const el = document.getElementById("downbeat");
        const first = window.affettoUi.metrics.beats;
        const timer = setInterval(() => {
          seen.samples += 1;
          if (el.classList.contains("on")) seen.on += 1;
          if (el.classList.contains("beat")) seen.beat += 1;
        }, 20);
        setTimeout(() => {
          clearInterval(timer);
          resolve({ ...seen, beats: window.affettoUi.metrics.beats - first, position: document.getElementById("position").textContent });
        }, 3000);
      }),
  );
  step("lamp", { lamp });

  // ---- hear it: Web Audio sounds the notes that arrive
  await page.click("#audio");
  await until("the audio context running", () => ui(() => window.affettoUi.audio?.state === "running"));
  // listen until the graph sounds (music has rests: a 2 s window can fall in one), 10 s at most
  const levels = [];
  const notesBefore = await ui(() => window.affettoUi.metrics.notes);
  for (let i = 0; i < 100; i += 1) {
    levels.push(await ui(() => window.affettoUi.synth.level()));
    if (i >= 10 && Math.max(...levels) > 1e-3) break;
    await page.waitForTimeout(100);
  }
  const notesHeard = (await ui(() => window.affettoUi.metrics.notes)) - notesBefore;
  const offlineRms = await ui(async () => {
    const { renderOffline } = await import("./synth.js");
    return renderOffline([
      { t: 0.1, channel: 0, pitch: 72, velocity: 100, layer: "melody" },
      { t: 0.1, channel: 2, pitch: 40, velocity: 90, layer: "bass" },
      { t: 0.5, channel: 9, pitch: 36, velocity: 110, layer: "drums" },
      { t: 1.0, channel: 0, pitch: 72, velocity: 0, layer: "melody" },
    ]);
  });
  step("audio", { liveLevelMax: Math.max(...levels), liveListenS: levels.length / 10, notesHeard, offlineRms });

  // ---- the pad: a drag to -V+A moves the session's emotion (read back over the protocol)
  await page.selectOption("#sync", "immediate");
  const box = await page.locator("#pad").boundingBox();
  const at = (v, a) => [box.x + ((v + 1) / 2) * box.width, box.y + ((1 - a) / 2) * box.height];
  await page.mouse.move(...at(0.5, -0.2));
  await page.mouse.down();
  await page.mouse.move(...at(0, 0.3), { steps: 5 });
  await page.mouse.move(...at(-0.8, 0.8), { steps: 5 });
  await page.mouse.up();
  await page.waitForTimeout(400);
  const afterPad = await watcher.status();
  step("pad", { padStatus: { valence: afterPad.valence, arousal: afterPad.arousal } });

  // pad moves timed to the first note of the new music (heard: its scheduled audio time)
  for (let i = 0; i < MOVES; i += 1) {
    const v = i % 2 ? 0.7 : -0.7;
    const before = await ui(() => window.affettoUi.metrics.padToNote.length);
    await page.mouse.click(...at(v, i % 3 ? 0.6 : -0.4));
    await until("the first note after a pad move", () => ui((n) => window.affettoUi.metrics.padToNote.length > n, before), 8000);
    await page.waitForTimeout(250);
  }
  step("latency", { padToNote: await ui(() => window.affettoUi.metrics.padToNote) });

  // ---- the keyboard: → moves valence by 0.1
  await page.locator("#pad").focus();
  const v0 = (await watcher.status()).valence;
  await page.keyboard.press("ArrowRight");
  await page.waitForTimeout(300);
  step("keys", { keyDelta: (await watcher.status()).valence - v0 });

  // ---- a state button lands at its sync point (bar)
  await page.selectOption("#sync", "bar");
  const n0 = await ui(() => window.affettoUi.metrics.transitions.length);
  await page.click('#states button[data-name="combat"]');
  const landed = await until("the state's transition", () =>
    ui((n) => window.affettoUi.metrics.transitions.slice(n).find((t) => t.op === "state"), n0),
  );
  const lastBeat = await ui(() => window.affettoUi.metrics.lastBeat);
  await page.waitForTimeout(300);
  step("state", { stateLanded: landed.beat, stateStatus: (await watcher.status()).state, stateShown: await page.textContent("#state"), beatAtLanding: lastBeat });

  // ---- the piano roll receives notes and draws them
  await page.waitForTimeout(2500); // combat: four layers
  const roll = await ui(() => {
    const c = document.getElementById("roll");
    const px = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
    let lit = 0;
    for (let i = 3; i < px.length; i += 4) if (px[i] > 0) lit += 1;
    return { received: window.affettoUi.metrics.notes, litPixels: lit, layers: [...new Set(window.affettoUi.metrics.layersSeen ?? [])] };
  });
  const heardLayers = (await watcher.status()).layers;
  step("roll", { roll, heardLayers });

  // ---- CPU of the page with four layers playing (Chromium's task time over 5 s)
  const cdp = await context.newCDPSession(page);
  await cdp.send("Performance.enable");
  const metric = async () => Object.fromEntries((await cdp.send("Performance.getMetrics")).metrics.map((m) => [m.name, m.value]));
  const m0 = await metric();
  await page.waitForTimeout(5000);
  const m1 = await metric();
  step("cpu", { cpuPercent: (100 * (m1.TaskDuration - m0.TaskDuration)) / (m1.Timestamp - m0.Timestamp) });

  // ---- story: a typed line yields a text event on the page
  await page.fill("#line", "The wolves closed in, howling, and the fire was going out.");
  await page.keyboard.press("Control+Enter");
  await until("the text event", () => ui(() => window.affettoUi.metrics.texts.length > 0), 15000);
  step("text", { text: await ui(() => window.affettoUi.metrics.texts[0]), textShown: await page.textContent("#lines li") });

  await page.screenshot({ path: `${outDir}/control_surface.png` });
  // notes the roll still holds open, with how long they have sounded (a lost note-off would show here)
  step("held", {
    held: await ui(() => {
      const r = window.affettoUi.roll;
      const now = Math.max(...r.notes.map((n) => n.on));
      return r.notes.filter((n) => n.off === null).map((n) => ({ channel: n.channel, pitch: n.pitch, heldS: now - n.on }));
    }),
    late: await ui(() => window.affettoUi.clock.late),
  });

  // ---- sessions: open a new one from the page, see it listed, join the first one back
  await page.fill("#new-name", "stage-2");
  await page.click("#new-session button");
  await until("the page in stage-2", () => ui(() => window.affettoUi.session === "stage-2"));
  const both = await watcher.sessions();
  await until("stage-2 listed on the page", async () => (await page.textContent("#sessions")).includes(session));
  await page.click(`#sessions button[aria-label="join ${session}"]`);
  await until("the page back in its first session", () => ui((s) => window.affettoUi.session === s, session));
  step("sessions", { bothListed: both.names });

  out.errors = await ui(() => window.affettoUi.metrics.errors);
} finally {
  watcher.close?.();
  await browser.close();
}
console.log(JSON.stringify(out));
