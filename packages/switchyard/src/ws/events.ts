/**
 * The browser-style half of ws's WebSocket: `addEventListener`, `removeEventListener` and the
 * `onopen`/`onmessage`/`onclose`/`onerror` properties, layered on the EventEmitter events.
 * Event objects are plain classes (Node 20 has no global CloseEvent or ErrorEvent), each with
 * `type` and `target` as in the WHATWG API.
 */

/** The base of the event objects a listener added with `addEventListener` receives. */
export class WsEvent {
  constructor(
    readonly type: string,
    readonly target: unknown,
  ) {}
}

/** `message`: text as a string, binary as the WebSocket's `binaryType` says. */
export class WsMessageEvent extends WsEvent {
  constructor(
    target: unknown,
    readonly data: unknown,
  ) {
    super('message', target);
  }
}

/** `close`: the code, the reason as a string, and whether both close frames were exchanged. */
export class WsCloseEvent extends WsEvent {
  constructor(
    target: unknown,
    readonly code: number,
    readonly reason: string,
    readonly wasClean: boolean,
  ) {
    super('close', target);
  }
}

/** `error`: the error and its message. */
export class WsErrorEvent extends WsEvent {
  readonly message: string;
  constructor(
    target: unknown,
    readonly error: Error,
  ) {
    super('error', target);
    this.message = error.message;
  }
}

/** A listener as `addEventListener` takes it: a function or an object with `handleEvent`. */
export type WsEventListener = ((event: any) => void) | { handleEvent(event: any): void };

/** The four event types of the browser API. */
export type WsEventType = 'open' | 'message' | 'close' | 'error';

/** What the emulation needs from the WebSocket it is mixed into. */
export interface EmitterLike {
  on(event: string, listener: (...args: any[]) => void): unknown;
  once(event: string, listener: (...args: any[]) => void): unknown;
  off(event: string, listener: (...args: any[]) => void): unknown;
}

const kListener = Symbol('switchyard.ws.listener');
const kFromProperty = Symbol('switchyard.ws.onProperty');

type Wrapper = ((...args: any[]) => void) & {
  [kListener]: WsEventListener;
  [kFromProperty]?: boolean;
};

/** Builds the EventEmitter listener that turns emitter arguments into an event object. */
export function wrapListener(
  target: EmitterLike & { closeWasClean(): boolean },
  type: WsEventType,
  listener: WsEventListener,
): Wrapper {
  const call = (event: WsEvent) => {
    if (typeof listener === 'function') listener.call(target, event);
    else listener.handleEvent.call(listener, event);
  };
  let wrapper: (...args: any[]) => void;
  switch (type) {
    case 'open':
      wrapper = () => call(new WsEvent('open', target));
      break;
    case 'message':
      wrapper = (data: unknown, isBinary: boolean) =>
        call(new WsMessageEvent(target, isBinary ? data : String(data)));
      break;
    case 'close':
      wrapper = (code: number, reason: Buffer) =>
        call(new WsCloseEvent(target, code, reason.toString(), target.closeWasClean()));
      break;
    case 'error':
      wrapper = (error: Error) => call(new WsErrorEvent(target, error));
      break;
  }
  (wrapper as Wrapper)[kListener] = listener;
  return wrapper as Wrapper;
}

const TYPES: readonly string[] = ['open', 'message', 'close', 'error'];

/** `addEventListener`: ignores types other than the four, as ws does. */
export function addEventListener(
  target: EmitterLike & { closeWasClean(): boolean; listeners(event: string): unknown[] },
  type: string,
  listener: WsEventListener,
  options: { once?: boolean } = {},
): void {
  if (!TYPES.includes(type)) return;
  // Adding the same listener twice is a no-op, as with EventTarget.
  for (const existing of target.listeners(type) as Wrapper[]) {
    if (existing[kListener] === listener && !existing[kFromProperty]) return;
  }
  const wrapper = wrapListener(target, type as WsEventType, listener);
  if (options.once === true) target.once(type, wrapper);
  else target.on(type, wrapper);
}

/** `removeEventListener`: removes only what `addEventListener` added. */
export function removeEventListener(
  target: EmitterLike & { listeners(event: string): unknown[] },
  type: string,
  listener: WsEventListener,
): void {
  for (const existing of target.listeners(type) as Wrapper[]) {
    if (existing[kListener] === listener && !existing[kFromProperty]) {
      target.off(type, existing);
      return;
    }
  }
}

/** The `on<type>` property: the listener it holds, or null. */
export function getHandler(
  target: { listeners(event: string): unknown[] },
  type: WsEventType,
): WsEventListener | null {
  for (const existing of target.listeners(type) as Wrapper[]) {
    if (existing[kFromProperty]) return existing[kListener];
  }
  return null;
}

/** Sets the `on<type>` property: replaces its previous listener; null or a non-function clears. */
export function setHandler(
  target: EmitterLike & { closeWasClean(): boolean; listeners(event: string): unknown[] },
  type: WsEventType,
  handler: unknown,
): void {
  for (const existing of target.listeners(type) as Wrapper[]) {
    if (existing[kFromProperty]) target.off(type, existing);
  }
  if (typeof handler !== 'function') return;
  const wrapper = wrapListener(target, type, handler as WsEventListener);
  wrapper[kFromProperty] = true;
  target.on(type, wrapper);
}
