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

    # The configuration wizard's way: one step at a time, 8 s for its reply.
    agent_id = "9b2e7c1a-4d3f-4a6b-8c5d-1e0f2a3b4c5d"
    token = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
    async with connect(f"{BASE}/ws/agent/{agent_id}") as ws:

        async def step(kind, data):
            await ws.send(json.dumps({"type": kind, "data": data}))
            while True:
                frame = json.loads(await asyncio.wait_for(ws.recv(), 8))
                if frame["type"] == f"{kind}_response":
                    assert frame["data"]["status"] != "error", frame
                    return frame

        abi = json.dumps([{"type": "function", "name": "totalSupply", "inputs": []}])
        await step("create_contract", {"contract_id": token, "address": token, "chain_id": 31337,
                                       "name": "T", "type": "ERC20", "abi": abi,
                                       "deployed_at": "2024-05-01T12:00:00.000Z", "agent_id": agent_id})
        created = await step("create_agent", {"contractId": token, "name": "py", "description": "",
                                              "status": "paused", "agent_id": agent_id})
        assert created["data"]["agent"]["agentId"] == agent_id
        await ws.send(json.dumps({"type": "configure_agent", "data": {"agent_id": agent_id}}))
        kinds = []
        while "agent_configured" not in kinds:
            kinds.append(json.loads(await asyncio.wait_for(ws.recv(), 8))["type"])
        assert kinds.index("configure_agent_response") < kinds.index("agent_configured"), kinds

    print("interop ok")


asyncio.run(main())
