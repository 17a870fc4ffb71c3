"""Hostile input: mutated IDX, WAV, image and model files, Speech Commands folders and web requests end in a
result or a SightsoundError (for web requests: a JSON error with a 4xx status).

A small share of the cases of ``benchmarks/fuzz.py`` (which runs 10,000 per parser).
"""

import pytest

from fuzz_targets import ALL, cases, run_case

CASES_PER_PARSER = {"idx": 400, "wav": 300, "image": 200, "model": 200, "speech-folder": 500, "web-body": 400}


@pytest.mark.parametrize("name", ALL)
def test_parser_survives_mutations(name):
    outcomes = {"ok": 0, "rejected": 0}
    for i, (target, data) in enumerate(cases(name, CASES_PER_PARSER[name], seed=1234)):
        try:
            outcomes[run_case(target, data)] += 1
        except Exception as err:  # noqa: BLE001 - report which case broke and how
            raise AssertionError(f"{name} case {i} ({len(data)} bytes, first 64: {data[:64]!r}) raised "
                                 f"{type(err).__name__}: {err}") from err
    assert outcomes["rejected"] > 0, outcomes  # the mutations do reach the error paths
    if name in ("speech-folder", "web-body"):
        assert outcomes["ok"] > 0, outcomes  # ... and leave some cases valid enough to load or answer


def test_huge_headers_are_rejected_before_allocating():
    import struct

    from sightsound.data import mnist
    from sightsound.errors import DataError

    with pytest.raises(DataError):
        mnist.read_idx(struct.pack(">HBB3I", 0, 8, 3, 10**9, 28, 28), name="huge.idx")
