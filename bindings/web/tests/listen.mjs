// listen.mjs: subscribe, then only listen (the keep-alive is the only request).
//
//   node --experimental-websocket bindings/web/tests/listen.mjs ws://127.0.0.1:9001 SECONDS KEEPALIVE_MS
//
// Prints "BEAT elapsed_ms bar beat" per beat and "ERROR code message" per error, then exits 0.
// tests/bindings/test_bindings.py runs it against a server with a short idle timeout.

import { AffettoClient } from "../affetto.js";

const [url, seconds, keepAliveMs] = process.argv.slice(2);
if (!url || seconds === undefined || keepAliveMs === undefined) {
  console.error("usage: node --experimental-websocket listen.mjs WS_URL SECONDS KEEPALIVE_MS");
  process.exit(2);
}
const client = new AffettoClient(url, { keepAliveMs: Number(keepAliveMs) });
const start = Date.now();
client.on("beat", (e) => console.log(`BEAT ${Date.now() - start} ${e.bar} ${e.beat}`));
client.on("error", (e) => console.log(`ERROR ${e.code} ${e.message}`));
await client.connect();
await client.subscribe();
await new Promise((resolve) => setTimeout(resolve, Number(seconds) * 1000));
client.close();
