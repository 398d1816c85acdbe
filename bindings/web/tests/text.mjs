// text.mjs: affetto.js sends lines of story text and prints their readings.
//
//   node --experimental-websocket bindings/web/tests/text.mjs WS_URL SECONDS LINE...
//
// Sends each LINE with text() and prints "OK {json}" for its reply (or "REJECTED {json}" when it
// rejects), "TEXT {json}" for every "text" event, "TRANSITION {json}" and "ERROR {json}" for the
// "error" handlers, until every line is answered (its reading, a late error or a rejection) or
// SECONDS pass. Exit status 0 when every line was answered, 1 otherwise, 2 for bad usage.
// tests/bindings/test_bindings.py runs it against a server of its own and against `affetto serve`.

import { AffettoClient, AffettoError } from "../affetto.js";

const [url, secondsArg, ...lines] = process.argv.slice(2);
if (!url || secondsArg === undefined || lines.length === 0) {
  console.error("usage: node --experimental-websocket text.mjs WS_URL SECONDS LINE...");
  process.exit(2);
}
const client = new AffettoClient(url, { timeoutMs: 10000, keepAliveMs: 0 });
let answered = 0;
let finish;
const finished = new Promise((resolve) => (finish = resolve));
const answer = () => (answered += 1) >= lines.length && finish();

client.on("text", (e) => {
  console.log("TEXT " + JSON.stringify(e));
  answer();
});
client.on("transition", (e) => console.log("TRANSITION " + JSON.stringify(e)));
client.on("error", (e) => {
  console.log("ERROR " + JSON.stringify({ code: e.code, message: e.message, op: e.op, id: e.id }));
  answer();
});

await client.connect();
for (const line of lines) {
  try {
    console.log("OK " + JSON.stringify(await client.text(line)));
  } catch (error) {
    if (!(error instanceof AffettoError)) throw error;
    console.log("REJECTED " + JSON.stringify({ code: error.code, message: error.message, op: error.op, id: error.id }));
    answer();
  }
}
const timer = setTimeout(finish, Number(secondsArg) * 1000);
await finished;
clearTimeout(timer);
client.close();
process.exit(answered >= lines.length ? 0 : 1);
