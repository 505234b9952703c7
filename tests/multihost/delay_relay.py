#!/usr/bin/python3
"""A TCP relay that can hold back one direction by a fixed delay.

Stands in for `tc qdisc ... netem delay` where the kernel has no netem
(CONFIG_NET_SCH_NETEM unset): it listens on LISTEN, forwards every
connection to UPSTREAM, and delays each chunk that UPSTREAM sends back by the
number of milliseconds written in CONTROL_FILE (re-read every 50 ms; absent
or empty: 0). Chunks keep their order and are pipelined: each leaves
`delay` after it arrived, like packets through netem on the upstream's
egress. Runs until killed.

Usage: delay_relay.py LISTEN_HOST:PORT UPSTREAM_HOST:PORT CONTROL_FILE
"""
import asyncio
import sys
import time


class Delay:
    def __init__(self, path):
        self.path = path
        self.seconds = 0.0
        self.read_at = 0.0

    def get(self):
        now = time.monotonic()
        if now - self.read_at > 0.05:
            self.read_at = now
            try:
                with open(self.path, encoding="ascii") as f:
                    text = f.read().strip()
                self.seconds = float(text) / 1000.0 if text else 0.0
            except (OSError, ValueError):
                self.seconds = 0.0
        return self.seconds


async def pump(reader, writer, delay=None):
    queue = asyncio.Queue()

    async def send():
        while True:
            due, data = await queue.get()
            if data is None:
                break
            wait = due - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            writer.write(data)
            await writer.drain()

    sender = asyncio.create_task(send())
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            due = time.monotonic() + (delay.get() if delay else 0.0)
            await queue.put((due, data))
    except (ConnectionError, OSError):
        pass
    await queue.put((0, None))
    try:
        await sender
        writer.close()
    except (ConnectionError, OSError):
        pass


def split(addr):
    host, port = addr.rsplit(":", 1)
    return host, int(port)


async def main():
    listen, upstream, control = sys.argv[1], sys.argv[2], sys.argv[3]
    delay = Delay(control)
    up_host, up_port = split(upstream)

    async def serve(c_reader, c_writer):
        try:
            u_reader, u_writer = await asyncio.open_connection(up_host, up_port)
        except OSError:
            c_writer.close()
            return
        await asyncio.gather(pump(c_reader, u_writer), pump(u_reader, c_writer, delay))

    host, port = split(listen)
    server = await asyncio.start_server(serve, host, port)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    asyncio.run(main())
