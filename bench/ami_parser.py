"""AMI frame parser throughput: ours vs panoramisk 1.4's, side by side on the same bytes.

Both parsers get busy_hour_small.ami in the 64 KiB reads a socket would deliver, and both
drop each frame right after it is produced (as a client hands it on). panoramisk is driven
through its real ``AMIProtocol.data_received`` with ``handle_message`` replaced by a counter.
Rounds alternate between the parsers so that noise from other processes hits both; the
best round of each is reported, in process CPU time. The split floor (frames and lines
only, no header pairs) is printed beside them to show how this machine compares to the one
the issue measured on.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from services.ami_ingest.ami.wire import FrameParser

FIXTURE = Path("/work/shared/fixtures/ami/busy_hour_small.ami")
READ_SIZE = 65536
ROUNDS = 9


def _chunks(data: bytes) -> list[bytes]:
    return [data[i : i + READ_SIZE] for i in range(0, len(data), READ_SIZE)]


def _ours(chunks: list[bytes]) -> int:
    parser = FrameParser()
    count = 0
    for chunk in chunks:
        count += len(parser.feed(chunk))
    parser.finish()
    return count


def _panoramisk(chunks: list[bytes]) -> int:
    from panoramisk.ami_protocol import AMIProtocol

    protocol = AMIProtocol()
    protocol.connection_made(None)
    seen = [0]

    def handle_message(message: Any) -> None:
        seen[0] += 1

    protocol.handle_message = handle_message
    for chunk in chunks:
        protocol.data_received(chunk)
    return seen[0]


def _floor(chunks: list[bytes]) -> int:
    """Only split into frames and lines (no header pairs): the floor the issue quotes."""
    rest = b""
    count = 0
    for chunk in chunks:
        frames = (rest + chunk).split(b"\r\n\r\n")
        rest = frames.pop()
        count += len([frame.decode("utf-8", "replace").split("\r\n") for frame in frames])
    return count


def _best_rate(func: Any, chunks: list[bytes]) -> tuple[float, int]:
    start = time.process_time()
    frames = func(chunks)
    return time.process_time() - start, frames


def run() -> list[dict[str, Any]]:
    chunks = _chunks(FIXTURE.read_bytes())
    ours_best = theirs_best = floor_best = float("inf")
    ours_frames = theirs_frames = floor_frames = 0
    for _ in range(ROUNDS):
        elapsed, ours_frames = _best_rate(_ours, chunks)
        ours_best = min(ours_best, elapsed)
        elapsed, theirs_frames = _best_rate(_panoramisk, chunks)
        theirs_best = min(theirs_best, elapsed)
        elapsed, floor_frames = _best_rate(_floor, chunks)
        floor_best = min(floor_best, elapsed)
    ours_rate = ours_frames / ours_best
    theirs_rate = theirs_frames / theirs_best
    ratio = ours_rate / theirs_rate
    floor_rate = floor_frames / floor_best
    return [
        {
            "name": "ami_parser_frames_per_s",
            "value": round(ours_rate),
            "unit": "frames/s",
            "target": ">= 3x panoramisk",
            "met": ratio >= 3.0,
        },
        {
            "name": "ami_parser_panoramisk_frames_per_s",
            "value": round(theirs_rate),
            "unit": "frames/s",
            "target": "reference",
            "met": True,
        },
        {
            "name": "ami_parser_split_floor_frames_per_s",
            "value": round(floor_rate),
            "unit": "frames/s",
            "target": f"reference (floor/panoramisk here {floor_rate / theirs_rate:.1f}x; issue's machine ~11.7x)",
            "met": True,
        },
        {
            "name": "ami_parser_speedup_vs_panoramisk",
            "value": round(ratio, 2),
            "unit": "x",
            "target": ">= 3",
            "met": ratio >= 3.0,
        },
    ]


if __name__ == "__main__":
    for row in run():
        print(row)
