#!/usr/bin/env python3
"""A Python `websockets` server that Switchyard's interop tests talk to.

Run it with Debian's interpreter (`/usr/bin/python3 -I -u ws_server.py ...`); the
pyenv `python3` first on PATH does not have `websockets`. The test helper
`startPythonServer()` in test/helpers/peers.ts starts and stops it.

Protocol with the parent, one JSON object per stdout line:
  {"event": "listening", "port": P, "websockets": "10.4"}   once, when accepting
  {"event": "closed", "code": C, "reason": R, "subprotocol": S}  per connection
Errors and tracebacks go to stderr. The server stops on SIGTERM or SIGINT, when
its stdin reaches EOF (the parent died), or after --max-seconds.

Behaviours (--behaviour):
  echo  echoes every text and binary message. A text message
        "close:<code>:<reason>" makes the server close with that code and
        reason instead (the reason may be empty: "close:4001:").

Uses only the surface shared by the legacy asyncio API of websockets 10.x and
the new asyncio API of 14+, so a newer Debian keeps working.
"""

import argparse
import asyncio
import json
import signal
import sys

try:
    import websockets
    from websockets.exceptions import ConnectionClosed
except ImportError as exc:  # the helper checks first; this is a last resort
    print(f"websockets is not importable: {exc}", file=sys.stderr)
    sys.exit(3)


def emit(obj):
    print(json.dumps(obj), flush=True)


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--behaviour", choices=["echo"], default="echo")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--compression", choices=["deflate", "none"], default="none")
    parser.add_argument("--subprotocols", default="", help="comma-separated, in preference order")
    parser.add_argument("--max-size", type=int, default=64 * 1024 * 1024)
    parser.add_argument("--max-seconds", type=float, default=300.0)
    return parser.parse_args()


def parse_close_command(message):
    # "close:<code>:<reason>" -> (code, reason), or None for any other message.
    if not isinstance(message, str) or not message.startswith("close:"):
        return None
    _, code, reason = (message.split(":", 2) + [""])[:3]
    try:
        return int(code), reason
    except ValueError:
        return None


async def echo(ws):
    try:
        async for message in ws:
            command = parse_close_command(message)
            if command is not None:
                await ws.close(command[0], command[1])
                break
            await ws.send(message)
    except ConnectionClosed:
        pass
    finally:
        # Waits for the closing handshake so close_code/close_reason are final.
        await ws.wait_closed()
        emit(
            {
                "event": "closed",
                "code": ws.close_code,
                "reason": ws.close_reason,
                "subprotocol": ws.subprotocol,
            }
        )


BEHAVIOURS = {"echo": echo}


async def main():
    args = parse_args()
    loop = asyncio.get_running_loop()
    stop = loop.create_future()

    def request_stop(*_):
        if not stop.done():
            stop.set_result(None)

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, request_stop)

    # Parent death closes our stdin: stop rather than linger as an orphan.
    def on_stdin():
        try:
            data = sys.stdin.buffer.raw.read(4096)
        except OSError:
            data = b""
        if not data:
            loop.remove_reader(sys.stdin.fileno())
            request_stop()

    try:
        loop.add_reader(sys.stdin.fileno(), on_stdin)
    except (OSError, ValueError, PermissionError):
        pass  # stdin is not a pipe (run by hand): rely on signals and --max-seconds
    loop.call_later(args.max_seconds, request_stop)

    subprotocols = [p for p in args.subprotocols.split(",") if p] or None
    server = await websockets.serve(
        BEHAVIOURS[args.behaviour],
        args.host,
        args.port,
        compression="deflate" if args.compression == "deflate" else None,
        subprotocols=subprotocols,
        max_size=args.max_size,
        ping_interval=None,  # no unsolicited pings: tests decide when to ping
        close_timeout=5,
    )
    port = server.sockets[0].getsockname()[1]
    emit({"event": "listening", "port": port, "websockets": websockets.version.version})
    try:
        await stop
    finally:
        server.close()
        try:
            await asyncio.wait_for(server.wait_closed(), 5)
        except asyncio.TimeoutError:
            print("server did not close within 5 s", file=sys.stderr)


if __name__ == "__main__":
    asyncio.run(main())
