// forward.mjs: affetto.js against a server newer than it (events and fields it has no name for).
//
//   node --experimental-websocket bindings/web/tests/forward.mjs WS_URL
//
// Subscribes, requests a status and waits 0.5 s; prints "MESSAGE {json}" for every event the
// "message" handlers get, "NOTE {json}" and "BEAT {json}" for the typed handlers, "STATUS {json}"
// for the status() answer and "ERROR {json}" for the "error" handlers. Exit status 0 unless an
// unknown event or field made it throw. tests/bindings/test_bindings.py runs it against a WebSocket server
// of its own that sends such events.

import { AffettoClient } from "../affetto.js";

const [url] = process.argv.slice(2);
if (!url) {
  console.error("usage: node --experimental-websocket forward.mjs WS_URL");
  process.exit(2);
}
const client = new AffettoClient(url, { timeoutMs: 5000, keepAliveMs: 0 });
client.on("message", (e) => console.log("MESSAGE " + JSON.stringify(e)));
client.on("note", (e) => console.log("NOTE " + JSON.stringify(e)));
client.on("beat", (e) => console.log("BEAT " + JSON.stringify(e)));
client.on("error", (e) => console.log("ERROR " + JSON.stringify({ code: e.code, message: e.message })));
await client.connect();
await client.subscribe();
console.log("STATUS " + JSON.stringify(await client.status()));
await new Promise((resolve) => setTimeout(resolve, 500));
client.close();
