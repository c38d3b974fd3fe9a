"""Running an aiohttp application on loopback, for the local provider servers."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web


@dataclass
class RunningServer:
    runner: web.AppRunner
    host: str
    port: int

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def stop(self) -> None:
        await self.runner.cleanup()


async def start(app: web.Application, host: str = "127.0.0.1", port: int = 0) -> RunningServer:
    """Serve ``app``; port 0 takes a free one (read it back from ``.port``)."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    addresses = runner.addresses
    return RunningServer(runner, host, int(addresses[0][1]))
