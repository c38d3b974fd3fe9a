"""The AMI socket's reader hands over received bytes as they are, with StreamReader's contract:
at most ``limit`` bytes a read, the socket paused while more than twice that waits, ``b""`` at
the end, a connection error raised once it happened."""

from __future__ import annotations

import asyncio

import pytest

from services.ami_ingest.ami.chunks import ChunkReader, open_chunked

LIMIT = 100


class RecordingTransport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.calls: list[str] = []

    def pause_reading(self) -> None:
        self.calls.append("pause")

    def resume_reading(self) -> None:
        self.calls.append("resume")

    def get_extra_info(self, name: str, default: object = None) -> object:
        return default


def connected() -> tuple[ChunkReader, RecordingTransport]:
    reader, transport = ChunkReader(LIMIT), RecordingTransport()
    reader.connection_made(transport)
    return reader, transport


async def test_small_chunks_waiting_together_are_read_as_one_up_to_the_limit() -> None:
    reader, _ = connected()
    for part in (b"a" * 40, b"b" * 40, b"c" * 40):
        reader.data_received(part)

    assert await reader.read() == b"a" * 40 + b"b" * 40
    assert await reader.read() == b"c" * 40


async def test_a_chunk_is_handed_over_as_the_same_object() -> None:
    reader, _ = connected()
    chunk = bytes(range(50))
    reader.data_received(chunk)

    assert await reader.read() is chunk


async def test_reading_pauses_past_twice_the_limit_and_resumes_once_drained_to_it() -> None:
    reader, transport = connected()
    for _ in range(3):
        reader.data_received(b"x" * LIMIT)
    assert transport.calls == ["pause"]

    await reader.read()
    assert transport.calls == ["pause"]  # 200 bytes still wait
    await reader.read()
    assert transport.calls == ["pause", "resume"]


async def test_a_read_waits_for_data() -> None:
    reader, _ = connected()
    pending = asyncio.ensure_future(reader.read())
    await asyncio.sleep(0)
    assert not pending.done()

    reader.data_received(b"Event: A\r\n\r\n")
    assert await asyncio.wait_for(pending, 5) == b"Event: A\r\n\r\n"


async def test_the_end_of_the_stream_reads_empty_after_the_data() -> None:
    reader, _ = connected()
    reader.data_received(b"last")
    reader.eof_received()

    assert await reader.read() == b"last"
    assert await reader.read() == b""


async def test_a_connection_error_is_raised_before_unread_data_as_streamreader_does() -> None:
    reader, _ = connected()
    reader.data_received(b"unread")
    reader.connection_lost(ConnectionResetError("reset by peer"))

    with pytest.raises(ConnectionResetError):
        await reader.read()


async def test_over_a_socket_the_bytes_arrive_whole_and_in_order() -> None:
    payload = bytes(range(256)) * 4096  # 1 MiB: several reads, pauses and resumes

    async def send(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(payload)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(send, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        reader, writer = await open_chunked("127.0.0.1", port, limit=64 * 1024)
        received = []
        while data := await reader.read():
            assert len(data) <= 256 * 1024
            received.append(data)
        writer.close()
        await writer.wait_closed()

    assert b"".join(received) == payload
