"""``python -m services.ami_ingest.simulator --port 5038 [--replay FILE] [--seed N] ...``

Without ``--replay`` it plays the call-center model; with it, it serves the recorded session.
Stops cleanly on SIGINT / SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import time

from services.ami_ingest.simulator.callcenter import CallCenter
from services.ami_ingest.simulator.protocol import Credentials
from services.ami_ingest.simulator.recording import load_recording
from services.ami_ingest.simulator.replay import ReplayServer
from services.ami_ingest.simulator.server import SimulatorServer


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m services.ami_ingest.simulator", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5038)
    parser.add_argument("--replay", metavar="FILE", help="serve this recorded *.ami session instead")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--calls-per-minute", type=float, default=12.0)
    parser.add_argument("--speed", type=float, default=1.0, help="time factor (replay: 0 = as fast as possible)")
    parser.add_argument(
        "--repeat", type=int, default=1, help="replay: stream the recorded live events this many times in a row"
    )
    parser.add_argument(
        "--start-epoch",
        type=int,
        default=None,
        help="the simulated clock's start in epoch seconds (default: now, so its times agree with the wall clock)",
    )
    # The login it accepts: the same variables ami_ingest reads, so one environment serves both.
    parser.add_argument("--username", default=os.environ.get("AMI_USERNAME", ""), help="default: AMI_USERNAME")
    parser.add_argument("--secret", default=os.environ.get("AMI_SECRET", ""), help="default: AMI_SECRET")
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    if not args.username or not args.secret:
        parser.error("give the login to accept (--username/--secret or AMI_USERNAME/AMI_SECRET): no default")
    return args


async def run(args: argparse.Namespace) -> None:
    credentials = Credentials(args.username, args.secret)
    server: ReplayServer | SimulatorServer
    if args.replay:
        recording = load_recording(args.replay)
        server = ReplayServer(
            recording,
            host=args.host,
            port=args.port,
            speed=args.speed or None,
            credentials=credentials,
            repeat=args.repeat,
        )
    else:
        start = args.start_epoch if args.start_epoch is not None else int(time.time())
        center = CallCenter(seed=args.seed, calls_per_minute=args.calls_per_minute, start_epoch=start)
        server = SimulatorServer(center, host=args.host, port=args.port, credentials=credentials, speed=args.speed)
    await server.start()
    logging.getLogger(__name__).info("AMI simulator ready on %s:%d", args.host, server.port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        await stop.wait()
    finally:
        await server.close()


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run(args))


if __name__ == "__main__":
    main()
