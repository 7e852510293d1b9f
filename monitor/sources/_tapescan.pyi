from typing import Any

import numpy as np

# what the C functions take: anything with the buffer protocol (numpy arrays writable)
Buffer = bytes | bytearray | memoryview | np.ndarray[Any, Any]

def scan(
    text: Buffer,
    size: int,
    width: int,
    kinds: Buffer,
    slots: Buffer,
    lows: Buffer,
    highs: Buffer,
    blank_ok: Buffer,
    cap: int,
    starts: Buffer,
    ends: Buffer,
    times: Buffer,
    symbols: Buffer,
    currencies: Buffer,
    numbers: Buffer,
) -> tuple[int, list[bytes], list[bytes]] | None: ...
def lines(text: Buffer, size: int) -> int: ...
