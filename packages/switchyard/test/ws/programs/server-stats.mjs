// ws's examples/server-stats/index.js with its import changed to switchyard/ws (and ESM
// imports, port 0 on 127.0.0.1 with the port printed, instead of 8080). Run by
// test/ws/examples.test.ts with the real `ws` client.
import express from 'express';
import path from 'node:path';
import { createServer } from 'node:http';

import { WebSocketServer } from 'switchyard/ws';

const app = express();
app.use(express.static(path.join(import.meta.dirname ?? '.', '/public')));

const server = createServer(app);
const wss = new WebSocketServer({ server });

wss.on('connection', function (ws) {
  const id = setInterval(function () {
    ws.send(JSON.stringify(process.memoryUsage()), function () {
      //
      // Ignore errors.
      //
    });
  }, 100);
  console.log('started client interval');

  ws.on('error', console.error);

  ws.on('close', function () {
    console.log('stopping client interval');
    clearInterval(id);
  });
});

server.listen(0, '127.0.0.1', function () {
  console.log(`Listening on http://localhost:${server.address().port}`);
});
