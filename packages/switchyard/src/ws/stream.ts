/**
 * `createWebSocketStream(websocket, options)`: a Node.js Duplex over a switchyard/ws WebSocket.
 *
 * Theory of operation. Each received message is pushed as one chunk; when the readable side is
 * full the WebSocket is paused (TCP back-pressure reaches the peer) and resumed on the next
 * `read()`. Each written chunk is sent as one message, its callback running once the message is
 * handed to the socket; writes made while connecting wait for `open`. Ending the writable side
 * starts the closing handshake; destroying the stream terminates the connection. The
 * connection's close ends the readable side; its error destroys the stream.
 */
import { Duplex, type DuplexOptions } from 'node:stream';
import { ReadyState } from '../index.js';
import type { WebSocket } from './websocket.js';

/**
 * A Duplex stream over `websocket`; `options` go to the Duplex constructor (for example
 * `{ encoding: 'utf8' }`, or `objectMode` to read text messages as strings).
 *
 * @example
 * const duplex = createWebSocketStream(new WebSocket('ws://127.0.0.1:8080'), { encoding: 'utf8' });
 * process.stdin.pipe(duplex).pipe(process.stdout);
 */
export function createWebSocketStream(websocket: WebSocket, options?: DuplexOptions): Duplex {
  let ended = false;
  const whenOpen = (then: () => void) => {
    if (websocket.readyState === ReadyState.CONNECTING) websocket.once('open', then);
    else then();
  };

  const duplex = new Duplex({
    ...options,
    autoDestroy: false,
    emitClose: false,
    read() {
      if (websocket.isPaused) websocket.resume();
    },
    write(chunk: Buffer | string, _encoding, callback) {
      whenOpen(() => websocket.send(chunk, callback));
    },
    final(callback) {
      whenOpen(() => {
        if (websocket.readyState === ReadyState.CLOSED) return callback();
        websocket.once('close', () => callback());
        websocket.close();
      });
    },
    destroy(error, callback) {
      if (websocket.readyState === ReadyState.CLOSED) {
        callback(error);
        return;
      }
      websocket.once('close', () => callback(error));
      websocket.terminate();
    },
  });

  const textAsString = duplex.readableObjectMode;
  const onMessage = (data: unknown, isBinary: boolean) => {
    const chunk = !isBinary && textAsString ? String(data) : data;
    if (!duplex.push(chunk)) websocket.pause();
  };
  const onError = (error: Error) => {
    if (duplex.destroyed) return;
    // Destroying terminates the connection; its 'close' then ends the stream's life.
    duplex.destroy(error);
  };
  const onClose = () => {
    websocket.off('message', onMessage);
    websocket.off('error', onError);
    if (!ended) {
      ended = true;
      duplex.push(null);
    }
    if (!duplex.destroyed && duplex.writableFinished) duplex.destroy();
    duplex.emit('close');
  };
  websocket.on('message', onMessage);
  websocket.on('error', onError);
  websocket.once('close', onClose);
  duplex.on('end', () => {
    ended = true;
    if (duplex.writableFinished) duplex.destroy();
  });
  return duplex;
}
