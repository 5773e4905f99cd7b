#!/usr/bin/env python3
"""A Python `websockets` client that Switchyard's interop tests point at a server.

Run it with Debian's interpreter (`/usr/bin/python3 -I -u ws_client.py URL SCENARIO`);
the helper `runPythonClient()` in test/helpers/peers.ts does this.

Scenarios:
  echo         send each message of --messages in turn, receive one reply after
               each, then close with 1000; reports what came back.
  close        close with --code/--reason; reports the close code and reason the
               peer answered with.
  await-close  send --messages (no replies expected), then wait for the peer to
               close; reports the code and reason it closed with.
  ping         send --count pings, wait for each pong; reports round-trip times.

--messages is a JSON list, read from stdin when its value is "-" (argv is capped
at 128 KiB per argument on Linux, too small for 1 MiB messages). Each item is
{"text": "..."} or {"binary": "<base64>"}; received messages use the same shape.

Output: exactly one JSON line on stdout, {"ok": true|false, "scenario": ..., ...}.
Exit codes: 0 the scenario ran, 1 the scenario failed (unexpected close, bad
reply), 2 usage error, 3 connection or handshake failed, 4 timed out.
"""

import argparse
import asyncio
import base64
import json
import sys
import time

try:
    import websockets
    from websockets.exceptions import ConnectionClosed, InvalidHandshake
except ImportError as exc:
    print(json.dumps({"ok": False, "stage": "import", "error": str(exc)}), flush=True)
    sys.exit(3)

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_CONNECT, EXIT_TIMEOUT = 0, 1, 2, 3, 4


class Failure(Exception):
    def __init__(self, stage, message, exit_code=EXIT_FAILED):
        super().__init__(message)
        self.stage = stage
        self.exit_code = exit_code


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("scenario", choices=["echo", "close", "await-close", "ping"])
    parser.add_argument("--messages", default="[]", help='JSON list, or "-" for stdin')
    parser.add_argument("--code", type=int, default=1000)
    parser.add_argument("--reason", default="")
    parser.add_argument("--count", type=int, default=1)
    parser.add_argument("--compression", choices=["deflate", "none"], default="none")
    parser.add_argument("--subprotocols", default="", help="comma-separated")
    parser.add_argument("--max-size", type=int, default=64 * 1024 * 1024)
    parser.add_argument("--timeout", type=float, default=10.0, help="per step, seconds")
    return parser.parse_args()


def decode_messages(raw):
    items = json.loads(sys.stdin.buffer.read().decode("utf-8") if raw == "-" else raw)
    if not isinstance(items, list):
        raise ValueError("--messages must be a JSON list")
    out = []
    for item in items:
        if "text" in item:
            out.append(item["text"])
        elif "binary" in item:
            out.append(base64.b64decode(item["binary"]))
        else:
            raise ValueError(f"message needs 'text' or 'binary': {item!r}")
    return out


def encode_message(message):
    if isinstance(message, str):
        return {"text": message}
    return {"binary": base64.b64encode(message).decode("ascii")}


async def step(stage, awaitable, timeout):
    try:
        return await asyncio.wait_for(awaitable, timeout)
    except asyncio.TimeoutError:
        raise Failure(stage, f"{stage} timed out after {timeout} s", EXIT_TIMEOUT) from None
    except ConnectionClosed as exc:
        raise Failure(stage, f"connection closed during {stage}: {exc}") from None


async def scenario_echo(ws, args, messages):
    received = []
    for index, message in enumerate(messages):
        await step(f"send #{index}", ws.send(message), args.timeout)
        reply = await step(f"receive #{index}", ws.recv(), args.timeout)
        received.append(encode_message(reply))
    await step("close", ws.close(1000, ""), args.timeout)
    return {"received": received}


async def scenario_close(ws, args, _messages):
    await step("close", ws.close(args.code, args.reason), args.timeout)
    return {"sent": {"code": args.code, "reason": args.reason}}


async def scenario_await_close(ws, args, messages):
    for index, message in enumerate(messages):
        await step(f"send #{index}", ws.send(message), args.timeout)
    unexpected = []
    deadline = time.monotonic() + args.timeout
    while len(unexpected) < 100:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise Failure("await close", f"peer did not close within {args.timeout} s", EXIT_TIMEOUT)
        try:
            message = await asyncio.wait_for(ws.recv(), remaining)
        except ConnectionClosed:
            break
        except asyncio.TimeoutError:
            continue  # the deadline check above reports it
        unexpected.append(encode_message(message))
    await step("wait closed", ws.wait_closed(), args.timeout)
    return {"received": unexpected}


async def scenario_ping(ws, args, _messages):
    rtts = []
    for index in range(max(1, min(args.count, 1000))):
        payload = f"switchyard-{index}".encode()
        started = time.perf_counter()
        pong_waiter = await step(f"ping #{index}", ws.ping(payload), args.timeout)
        await step(f"pong #{index}", pong_waiter, args.timeout)
        rtts.append((time.perf_counter() - started) * 1000)
    await step("close", ws.close(1000, ""), args.timeout)
    return {"rtt_ms": rtts[0], "rtts_ms": rtts}


SCENARIOS = {
    "echo": scenario_echo,
    "close": scenario_close,
    "await-close": scenario_await_close,
    "ping": scenario_ping,
}


async def run(args, messages):
    subprotocols = [p for p in args.subprotocols.split(",") if p] or None
    try:
        ws = await asyncio.wait_for(
            websockets.connect(
                args.url,
                compression="deflate" if args.compression == "deflate" else None,
                subprotocols=subprotocols,
                max_size=args.max_size,
                ping_interval=None,
                open_timeout=args.timeout,
                close_timeout=args.timeout,
            ),
            args.timeout + 1,
        )
    except asyncio.TimeoutError:
        raise Failure("connect", f"opening handshake timed out after {args.timeout} s", EXIT_TIMEOUT) from None
    except (OSError, InvalidHandshake) as exc:
        raise Failure("connect", f"{type(exc).__name__}: {exc}", EXIT_CONNECT) from None
    try:
        result = await SCENARIOS[args.scenario](ws, args, messages)
    finally:
        # Make sure the closing handshake ends (or times out) before reporting.
        try:
            await asyncio.wait_for(ws.close(), args.timeout + 1)
        except asyncio.TimeoutError:
            print("closing handshake did not end in time", file=sys.stderr)
    result["close"] = {"code": ws.close_code, "reason": ws.close_reason}
    result["subprotocol"] = ws.subprotocol
    return result


def main():
    args = parse_args()
    out = {"ok": False, "scenario": args.scenario, "websockets": websockets.version.version}
    try:
        messages = decode_messages(args.messages)
    except (ValueError, KeyError, TypeError) as exc:
        out.update(stage="arguments", error=str(exc))
        print(json.dumps(out), flush=True)
        return EXIT_USAGE
    try:
        out.update(asyncio.run(run(args, messages)))
        out["ok"] = True
        code = EXIT_OK
    except Failure as exc:
        out.update(stage=exc.stage, error=str(exc))
        code = exc.exit_code
    except Exception as exc:  # report anything else in the same shape
        out.update(stage="unexpected", error=f"{type(exc).__name__}: {exc}")
        code = EXIT_FAILED
    print(json.dumps(out), flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
