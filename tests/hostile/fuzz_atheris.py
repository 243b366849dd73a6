"""Coverage-guided fuzzing of the frame decoder and the codec with atheris (libFuzzer), when installed.

    .venv/bin/pip install atheris
    .venv/bin/python -m tests.hostile.fuzz_atheris -runs=200000      # or -max_total_time=600

It checks the same contract as the hypothesis tests (tests/hostile/test_fuzz_*.py): the connection
carries on or closes with a reason, never raises, never buffers more than one frame; the codec returns a
dict of string keys or raises DecodeError.  test_atheris.py runs a short campaign when atheris is there.
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports():
    import sprocket.codec
    import sprocket.protocol

from sprocket.errors import DecodeError
from tests.hostile.test_fuzz_protocol import HELLO_FRAME, Driven

codec = sprocket.codec.MsgpackCodec()


def one_input(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    target = fdp.ConsumeIntInRange(0, 3)
    if target == 3:
        try:
            fields = codec.decode(fdp.ConsumeBytes(fdp.remaining_bytes()))
        except DecodeError:
            return
        assert type(fields) is dict and all(type(k) is str for k in fields)
        return
    end = Driven("client" if target == 2 else "server")
    if target == 1:
        end.feed(HELLO_FRAME)
    while fdp.remaining_bytes():
        chunk = fdp.ConsumeBytes(fdp.ConsumeIntInRange(1, 2048))
        if chunk:
            end.feed(chunk)
    end.finish()


def main(argv: list[str]) -> None:
    atheris.Setup(argv, one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main(sys.argv)
