/**
 * What `switchyard/browser` needs of its surroundings, typed here rather than taken from the DOM
 * library, so that the entry point compiles (and its types read) the same with `lib: ["dom"]`,
 * with `@types/node`, or in a worker: the `WebSocket` class, and the browser's online status.
 */

/** The part of the WHATWG `WebSocket` that the reconnecting client uses. */
export interface WebSocketLike extends EventTarget {
  readonly readyState: number;
  /** The subprotocol the server chose, or ''. */
  readonly protocol: string;
  readonly bufferedAmount: number;
  binaryType: string;
  send(data: string | ArrayBuffer | ArrayBufferView | Blob): void;
  close(code?: number, reason?: string): void;
}

/** A `WebSocket` class: the browser's own, or one with the same API (`BrowserWebSocket`). */
export type WebSocketConstructor = new (
  url: string,
  protocols?: string | string[],
) => WebSocketLike;

/** The `WebSocket` global of this environment, if it has one. */
export function globalWebSocket(): WebSocketConstructor | undefined {
  return (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
}

/** The page's address, to resolve a relative URL against (none outside a page or worker). */
export function pageLocation(): string | undefined {
  return (globalThis as { location?: { href?: string } }).location?.href;
}

/**
 * Whether the browser says it has no network (`navigator.onLine === false`). Only "offline" is
 * trusted: "online" means no more than a network interface being up.
 */
export function isOffline(): boolean {
  return (globalThis as { navigator?: { onLine?: unknown } }).navigator?.onLine === false;
}

/**
 * The target of the `online` event (`window`, or a worker's global scope), or null where there
 * is none (Node): then the client never waits for it.
 */
export function onlineEvents(): EventTarget | null {
  const scope = globalThis as Partial<EventTarget>;
  return typeof scope.addEventListener === 'function' &&
    typeof scope.removeEventListener === 'function'
    ? (scope as EventTarget)
    : null;
}
