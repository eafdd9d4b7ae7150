"""The chat's room protocol on the bare `websockets` library: no Django, no Channels, no layer.

The benchmark's ceiling: what one Python process can do with the same frames
when nothing stands between the socket and the room. It speaks only what the
benchmark uses: /ws/chat/<room>/, a {"channel_name": ...} hello, and
{"message": ...} in, {"message", "user", "direct"} out to everyone in the room.

    python -m tutorial bare-chat PORT [BACKLOG]
"""

import argparse
import asyncio
import itertools
import json
import re

from websockets.asyncio.server import broadcast, serve

ROOM_PATH = re.compile(r"/ws/chat/(\w+)/")


async def serve_room(port, backlog=100):
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


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m tutorial bare-chat", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("port", type=int)
    parser.add_argument("backlog", type=int, nargs="?", default=100, help="the listen queue (asyncio's default: 100)")
    args = parser.parse_args(argv)
    asyncio.run(serve_room(args.port, args.backlog))
