// control.mjs: drives affetto.js's volume, transport (pause, resume, stop with a fade-out, start) and
// hello against a running `affetto serve`, with the "notes" output on.
//
//   node --experimental-websocket bindings/web/tests/control.mjs ws://127.0.0.1:9001
//
// Prints one line per event and step, each "KIND elapsed_ms {json}":
//   MARK (a step begins: {"step": name}) | HELLO | SESSIONS | STATUS | BEAT | NOTE | VOLUME | OK | REJECTED
//   (an operation the server refused, as the test expects) | ERROR (any other error)
// The steps: hello; sessions; four beats; volume 0.5 over 0.5 s; the first layer at 0.25; an unknown layer
// (refused); status; pause, 2 s, status; resume, two beats, status; stop with a 0.5 s fade-out,
// 1.5 s, status; a stinger while stopped (refused: not_playing); start, two beats, status.
// bindings/unity/tests/SmokeTest.cs `control` prints the same lines over OSC, and
// tests/bindings/test_bindings.py checks both with one function. Exit status 0 unless it crashed.

import { AffettoClient, AffettoError, NOTES_OUTPUT } from "../affetto.js";

const [url] = process.argv.slice(2);
if (!url) {
  console.error("usage: node --experimental-websocket control.mjs WS_URL");
  process.exit(2);
}
const client = new AffettoClient(url, { timeoutMs: 10000 });
const start = Date.now();
const line = (kind, payload) => console.log(`${kind} ${Date.now() - start} ${JSON.stringify(payload)}`);
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

let beats = 0;
client.on("beat", (e) => {
  beats += 1;
  line("BEAT", e);
});
client.on("note", (e) => line("NOTE", e));
client.on("volume", (e) => line("VOLUME", e));
client.on("error", (e) => line("ERROR", { code: e.code, message: e.message }));

// Resolves once `n` more beats have arrived, or after `ms` (the test reports what is missing).
async function beatsOrTimeout(n, ms = 8000) {
  const until = beats + n;
  const deadline = Date.now() + ms;
  while (beats < until && Date.now() < deadline) await sleep(10);
}

// An operation: its reply printed as OK (or STATUS/HELLO), a refusal as REJECTED.
async function step(name, call, kind = "OK") {
  line("MARK", { step: name });
  try {
    const reply = await call();
    line(kind, reply);
    return reply;
  } catch (error) {
    if (!(error instanceof AffettoError)) throw error;
    line("REJECTED", { step: name, code: error.code, message: error.event.message ?? error.message });
    return undefined;
  }
}

async function main() {
  await client.connect();
  await step("subscribe", () => client.subscribe());
  await step("output", () => client.output(NOTES_OUTPUT));
  await step("tempo", () => client.transport("tempo", 240));
  const hello = await step("hello", () => client.hello(), "HELLO");
  await step("sessions", () => client.sessions(), "SESSIONS");
  await beatsOrTimeout(4);
  await step("volume", () => client.volume(0.5, { fadeS: 0.5 }));
  const layer = hello?.layer_names?.[0] ?? "melody";
  await step("layer-volume", () => client.volume(0.25, { layer }));
  await step("unknown-layer", () => client.volume(1, { layer: "no-such-layer" }));
  await sleep(700); // the fade ends
  await step("status-volume", () => client.status(), "STATUS");
  await step("pause", () => client.transport("pause"));
  await sleep(2000);
  await step("status-paused", () => client.status(), "STATUS");
  await step("resume", () => client.transport("resume"));
  await beatsOrTimeout(2);
  await step("status-resumed", () => client.status(), "STATUS");
  await step("stop", () => client.transport("stop", 0.5));
  await sleep(1500);
  await step("status-stopped", () => client.status(), "STATUS");
  await step("stinger-stopped", () => client.stinger("hit"));
  await step("start", () => client.transport("start"));
  await beatsOrTimeout(2);
  await step("status-started", () => client.status(), "STATUS");
  line("MARK", { step: "end" });
  client.close();
  return 0;
}

main().then(
  (code) => process.exit(code),
  (error) => {
    console.error(error);
    process.exit(1);
  },
);
