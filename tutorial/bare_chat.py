"""The chat's room protocol on the bare `websockets` library: no Django, no Channels, no layer.

The benchmark's ceiling: what one Python process can do with the same frames
when nothing stands between the socket and the room. It speaks only what the
benchmark uses: /ws/chat/<room>/, a {"channel_name": ...} hello, and
{"message": ...} in, {"message", "user", "direct"} out to everyone in the room.

    python -m tutorial.bare_chat PORT [BACKLOG]
"""

import asyncio
import itertools
import json
import re
import sys

from websockets.asyncio.server import broadcast, serve

ROOM_PATH = re.compile(r"/ws/chat/(\w+)/")


async def main(port, backlog=100):
    rooms = {}
    numbers = itertools.count()

    async def chat(ws):
        match = ROOM_PATH.fullmatch(ws.request.path)
        if not match:
            await ws.close(4404)
            return
        room = rooms.setdefault(match.group(1), set())
        room.add(ws)
        try:
            await ws.send(json.dumps({"channel_name": f"bare.{next(numbers)}"}))
            async for frame in ws:
                try:
                    message = json.loads(frame)["message"]
                except (ValueError, TypeError, KeyError):
                    continue
                if isinstance(message, str):
                    # One write per member, straight into each socket's buffer.
                    broadcast(room, json.dumps({"message": message, "user": "anonymous", "direct": False}))
        finally:
            room.discard(ws)

    # No compression: daphne offers none either, so both do the same work per frame.
    async with serve(chat, "127.0.0.1", port, compression=None, max_queue=None, backlog=backlog):
        await asyncio.Future()


if __name__ == "__main__":
    asyncio.run(main(*map(int, sys.argv[1:3])))  # the port, and the listen backlog (asyncio's default: 100)
