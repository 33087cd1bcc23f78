"""collector/connections.py's HeadWithBody: one write per response head and body, bytes in order."""

from __future__ import annotations

import asyncio

from collector.connections import HeadWithBody


class Recording:
    """A transport that records what it is asked to do."""

    def __init__(self):
        self.calls: list[tuple[str, bytes]] = []

    def write(self, data: bytes) -> None:
        self.calls.append(("write", bytes(data)))

    def close(self) -> None:
        self.calls.append(("close", b""))

    def write_eof(self) -> None:
        self.calls.append(("eof", b""))

    def is_closing(self) -> bool:
        return any(call == "close" for call, _ in self.calls)

    def get_extra_info(self, name: str):
        return f"info {name}"


async def _turn() -> None:
    await asyncio.sleep(0)
    await asyncio.sleep(0)


def test_a_head_and_its_body_go_out_in_one_write():
    async def scenario():
        transport = Recording()
        writes = HeadWithBody(transport, asyncio.get_running_loop())
        writes.write(b"HTTP/1.1 200 OK\r\n\r\n")
        writes.write(b"{}")
        await _turn()
        return transport.calls

    assert asyncio.run(scenario()) == [("write", b"HTTP/1.1 200 OK\r\n\r\n{}")]


def test_a_head_whose_body_comes_later_goes_out_on_the_next_turn():
    async def scenario():
        transport = Recording()
        writes = HeadWithBody(transport, asyncio.get_running_loop())
        writes.write(b"head")
        held = list(transport.calls)
        await _turn()
        writes.write(b"chunk")
        writes.write(b"more")
        await _turn()
        return held, transport.calls

    held, calls = asyncio.run(scenario())
    assert held == [] and calls == [("write", b"head"), ("write", b"chunkmore")]


def test_a_close_sends_what_is_held_first_and_the_rest_is_the_transport_s():
    async def scenario():
        transport = Recording()
        writes = HeadWithBody(transport, asyncio.get_running_loop())
        writes.write(b"HTTP/1.1 408 Request Timeout\r\n\r\n")
        writes.close()
        await _turn()
        return transport.calls, writes.get_extra_info("peername")

    calls, info = asyncio.run(scenario())
    assert calls == [("write", b"HTTP/1.1 408 Request Timeout\r\n\r\n"), ("close", b"")]
    assert info == "info peername"


def test_writelines_and_an_eof_keep_the_held_bytes_first():
    """writelines and write_eof reached the transport itself through attribute delegation, past
    a held head: the body before the head, or the end of the stream before the head."""
    async def scenario():
        transport = Recording()
        writes = HeadWithBody(transport, asyncio.get_running_loop())
        writes.write(b"head")
        writes.writelines([b"bo", b"dy"])
        writes.write(b"tail")
        writes.write_eof()
        await _turn()
        return transport.calls

    assert asyncio.run(scenario()) == [("write", b"headbody"), ("write", b"tail"), ("eof", b"")]
