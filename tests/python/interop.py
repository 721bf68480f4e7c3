"""Drives agentport with Python's `websockets` client, the ecosystem of the
server it replaces. Usage: interop.py ws://HOST:PORT. Exits non-zero on the
first failed expectation."""

import asyncio
import json
import sys

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

BASE = sys.argv[1]
TIMEOUT = 20


async def recv_json(ws):
    return json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))


async def expect_close(ws, code):
    try:
        while True:
            await asyncio.wait_for(ws.recv(), TIMEOUT)
    except ConnectionClosed as closed:
        assert closed.rcvd is not None, "no close frame received"
        assert closed.rcvd.code == code, f"close code {closed.rcvd.code}, expected {code}"


async def main():
    channel = "3f1c9a7e-2b4d-4e8f-9a1b-7c6d5e4f3a2b"
    # The library's own keepalive pings must be answered, too.
    async with connect(f"{BASE}/ws/agent/{channel}", ping_interval=0.2, ping_timeout=5) as ws:
        await ws.send(json.dumps({"type": "ping", "id": "py-1", "data": {"n": 1}}))
        assert await recv_json(ws) == {"type": "pong", "id": "py-1", "data": {"n": 1}}

        await ws.send("this is not json")
        error = await recv_json(ws)
        assert error["type"] == "error" and error["message"] == "Invalid JSON message", error
        assert error["data"]["code"] == "invalid_json", error

        await ws.send(json.dumps({"type": "create_universe", "data": {}}))
        error = await recv_json(ws)
        assert error["message"] == "Unknown message type: create_universe", error

        await ws.send(json.dumps({"data": {}}))
        assert (await recv_json(ws))["message"] == "Unknown message type: None"

        latency = await asyncio.wait_for(await ws.ping(), TIMEOUT)
        assert latency >= 0
        await asyncio.sleep(0.5)  # several keepalive rounds
        await ws.send(json.dumps({"type": "ping", "id": 2}))
        assert (await recv_json(ws))["id"] == 2

    async with connect(f"{BASE}/ws/agent/binary") as ws:
        await ws.send(b"\x00\x01")
        await expect_close(ws, 1003)

    async with connect(f"{BASE}/ws/agent/big", max_size=None) as ws:
        await ws.send(json.dumps({"type": "ping", "data": {"pad": "x" * (1 << 20)}}))
        await expect_close(ws, 1009)

    print("interop ok")


asyncio.run(main())
