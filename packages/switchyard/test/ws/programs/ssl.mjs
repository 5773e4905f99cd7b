// ws's examples/ssl.js with its import changed to switchyard/ws (and ESM imports; the
// certificate and key paths come from the environment instead of ws's test fixtures, and it
// listens on 127.0.0.1 only). It is
// its own client: the server logs what the client sends. Run by test/ws/examples.test.ts.
import https from 'node:https';
import fs from 'node:fs';

import { WebSocket, WebSocketServer } from 'switchyard/ws';

const server = https.createServer({
  cert: fs.readFileSync(process.env.CERT_FILE),
  key: fs.readFileSync(process.env.KEY_FILE),
});

const wss = new WebSocketServer({ server });

wss.on('connection', function connection(ws) {
  ws.on('error', console.error);

  ws.on('message', function message(msg) {
    console.log(msg.toString());
  });
});

server.listen(0, '127.0.0.1', function listening() {
  //
  // If the `rejectUnauthorized` option is not `false`, the server certificate
  // is verified against a list of well-known CAs. An 'error' event is emitted
  // if verification fails.
  //
  // The certificate used in this example is self-signed so `rejectUnauthorized`
  // is set to `false`.
  //
  const ws = new WebSocket(`wss://127.0.0.1:${server.address().port}`, {
    rejectUnauthorized: false,
  });

  ws.on('error', console.error);

  ws.on('open', function open() {
    ws.send('All glory to WebSockets!');
  });
});
