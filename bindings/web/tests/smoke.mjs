// smoke.mjs: drives affetto.js against a running `affetto serve`.
//
//   node --experimental-websocket bindings/web/tests/smoke.mjs ws://127.0.0.1:9001 [SECONDS]
//
// Checks the client-side validation, then subscribes, sends emotion/state/stinger/tempo, no outputs
// (silent), an output the server lacks, a bad state name, a status request, a hello and the "notes"
// output, and prints one line per event received:
//   BEAT {json} | BAR {json} | TRANSITION {json} | STATUS {json} | NOTE {json} | OK {json} | ERROR {json}
//   | HELLO {json} | VALIDATION ok N | VALIDATION FAIL what
// It stops once it has seen 6 beats including a downbeat, both errors, the status and 4 notes (a
// note-on and a note-off among them), or after the time limit (default 20 s). Exit status 0 when
// all were seen, 1 otherwise, 2 for bad usage.
// tests/bindings/test_bindings.py runs it and checks the printed events.

import { AffettoClient, AffettoError, NOTES_OUTPUT } from "../affetto.js";

const [url, secondsArg] = process.argv.slice(2);
if (!url) {
  console.error("usage: node --experimental-websocket smoke.mjs WS_URL [SECONDS]");
  process.exit(2);
}
const seconds = secondsArg === undefined ? 20 : Number(secondsArg);

const client = new AffettoClient(url, { timeoutMs: 10000 });
let beats = 0;
let downbeat = false;
let sawErrors = 0;
let sawStatus = false;
let notes = 0;
let noteOn = false;
let noteOff = false;
const done = () => beats >= 6 && downbeat && sawErrors === 2 && sawStatus && notes >= 4 && noteOn && noteOff;
let finish;
const finished = new Promise((resolve) => (finish = resolve));
const check = () => done() && finish();

client.on("beat", (e) => {
  beats += 1;
  downbeat ||= e.beat === 0;
  console.log("BEAT " + JSON.stringify(e));
  check();
});
client.on("bar", (e) => console.log("BAR " + JSON.stringify(e)));
client.on("transition", (e) => console.log("TRANSITION " + JSON.stringify(e)));
client.on("status", (e) => console.log("STATUS " + JSON.stringify(e)));
client.on("note", (e) => {
  notes += 1;
  noteOn ||= e.velocity > 0;
  noteOff ||= e.velocity === 0;
  console.log("NOTE " + JSON.stringify(e));
  check();
});
client.on("error", (e) => console.log("ERROR " + JSON.stringify({ code: e.code, message: e.message })));

// Each bad call must reject with TypeError or RangeError before anything is sent.
async function checkValidation() {
  const bad = [
    () => client.emotion(NaN, 0),
    () => client.emotion(0, Infinity),
    () => client.emotion(1.5, 0),
    () => client.emotion(0, 0, { tension: -1.01 }),
    () => client.emotion(0, 0, { sync: "later" }),
    () => client.emotion(0, 0, { seekPerS: 0 }),
    () => client.emotion("0.5", 0),
    () => client.state(""),
    () => client.state("x".repeat(65)),
    () => client.param("health", NaN),
    () => client.transport("rewind"),
    () => client.transport("tempo", 1000),
    () => client.transport("seed", -1),
    () => client.transport("seed", 1.5),
    () => client.transport("sync", "sometimes"),
    () => client.transport("pause", 1),
    () => client.transport("resume", 0),
    () => client.transport("start", 1),
    () => client.transport("stop", -0.5),
    () => client.transport("stop", 60.5),
    () => client.transport("stop", NaN),
    () => client.transport("stop", "slowly"),
    () => client.volume(1.01),
    () => client.volume(-0.01),
    () => client.volume(NaN),
    () => client.volume("0.5"),
    () => client.volume(0.5, { fadeS: -1 }),
    () => client.volume(0.5, { fadeS: 61 }),
    () => client.volume(0.5, { fadeS: Infinity }),
    () => client.volume(0.5, { layer: "" }),
    () => client.volume(0.5, { layer: "x".repeat(65) }),
    () => client.volume(0.5, { layer: 3 }),
    () => client.leitmotif("hero", { notes: [[0, 200, 1, 90]] }),
    () => client.text("x".repeat(10001)),
    () => client.text(""),
    () => client.output(""),
    () => client.output("audio", 42),
    () => client.output("x".repeat(65)),
    () => client.output(...Array(9).fill("audio")),
  ];
  let ok = true;
  for (const [i, call] of bad.entries()) {
    try {
      await call();
      console.log(`VALIDATION FAIL case ${i} did not reject`);
      ok = false;
    } catch (error) {
      if (!(error instanceof TypeError || error instanceof RangeError)) {
        console.log(`VALIDATION FAIL case ${i} rejected with ${error}`);
        ok = false;
      }
    }
  }
  if (ok) console.log(`VALIDATION ok ${bad.length}`);
  return ok;
}

// A valid-looking request the server must reject: prints its error, or a VALIDATION FAIL line.
async function expectRejected(call, what) {
  try {
    await call();
    console.log(`VALIDATION FAIL ${what} was accepted`);
  } catch (error) {
    if (!(error instanceof AffettoError)) throw error;
    sawErrors += 1;
    const { code, op, id } = error;
    console.log("ERROR " + JSON.stringify({ code, message: error.event.message, op, id }));
  }
}

async function main() {
  await client.connect();
  const valid = await checkValidation();
  const print = (reply) => console.log("OK " + JSON.stringify(reply));
  print(await client.subscribe());
  print(await client.emotion(0.5, 0.6, { tension: 0.2 }));
  print(await client.state("combat"));
  print(await client.stinger("hit"));
  print(await client.transport("tempo", 240));
  print(await client.output()); // silent: accepted by any server
  await expectRejected(() => client.output("audio"), "an output the server lacks");
  await expectRejected(() => client.state("no-such-state"), "the bad state name");
  const status = await client.status();
  sawStatus = status.event === "status";
  console.log("HELLO " + JSON.stringify(await client.hello()));
  print(await client.output(NOTES_OUTPUT)); // the session's notes as "note" events
  check();
  const timer = setTimeout(finish, seconds * 1000);
  await finished;
  clearTimeout(timer);
  client.close();
  return valid && done() ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (error) => {
    console.error(error);
    process.exit(1);
  },
);
