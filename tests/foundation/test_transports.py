"""A closed socket transport is freed by reference counting, frozen heap or not."""

from __future__ import annotations

import asyncio
import gc
import weakref

from runtime.transports import free_closed_transports


async def test_a_closed_connection_frees_its_transport_without_the_collector() -> None:
    free_closed_transports()
    server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    gc.disable()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        # As the service's heap after a collection cycle: nothing alive now is collected.
        gc.freeze()
        freed = weakref.ref(writer.transport)
        writer.close()
        await writer.wait_closed()
        del reader, writer
        for _ in range(3):  # connection_lost runs on a later loop iteration
            await asyncio.sleep(0)
        assert freed() is None
    finally:
        gc.unfreeze()
        gc.enable()
        server.close()
        await server.wait_closed()
