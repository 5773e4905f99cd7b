/**
 * The sans-I/O core: bytes in, events and bytes out. No sockets, no timers, no Node modules.
 * Use it to run the WebSocket protocol over any transport.
 */
export * from './errors.js';
export * from './connection.js';
export * from './frame.js';
export * from './receiver.js';
// SHORT_TEXT stays internal: a tuning constant shared by the receiver and the Node layer.
export { Utf8Validator, isValidUtf8 } from './utf8.js';
export * from './mask.js';
export * from './handshake.js';
export * from './header-lists.js';
export * from './http-head.js';
export * from './upgrade.js';
export * from './permessage-deflate.js';
export * from './extended-connect.js';
export * from './reconnect.js';
export * from './resume.js';
