"""Property and fuzz tests (hypothesis) of the readers of user files and of the models' input sizes.

Each file keeps its examples few and fast (``FUZZ_SETTINGS``): the whole folder runs in well under
a minute on two CPU cores. Set ``SEGCORE_FUZZ_EXAMPLES`` to run more examples locally.
"""
import os

from hypothesis import HealthCheck, settings


def fuzz_settings(max_examples: int, **kwargs) -> settings:
    """hypothesis settings for these tests: no example database written to the checkout, no deadline
    (the first example pays for imports and caches), ``max_examples`` unless ``SEGCORE_FUZZ_EXAMPLES``
    asks for more."""
    n = int(os.environ.get("SEGCORE_FUZZ_EXAMPLES", max_examples))
    return settings(max_examples=n, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture], **kwargs)


def mutated_bytes(seeds):
    """A strategy: one of ``seeds`` (bytes) with 1 to 4 random edits (bit flips, byte overwrites,
    truncation, insertion, deletion), as a mutation fuzzer makes them."""
    from hypothesis import strategies as st

    @st.composite
    def _mutated(draw):
        data = bytearray(draw(st.sampled_from(list(seeds))))
        for _ in range(draw(st.integers(1, 4))):
            if not data:
                break
            kind = draw(st.sampled_from(["flip", "set", "truncate", "insert", "delete"]))
            i = draw(st.integers(0, len(data) - 1))
            if kind == "flip":
                data[i] ^= 1 << draw(st.integers(0, 7))
            elif kind == "set":
                data[i] = draw(st.sampled_from([0, 1, 0x7F, 0x80, 0xFF, draw(st.integers(0, 255))]))
            elif kind == "truncate":
                del data[i:]
            elif kind == "insert":
                data[i:i] = draw(st.binary(min_size=1, max_size=8))
            else:
                del data[i:i + draw(st.integers(1, 16))]
        return bytes(data)

    return _mutated()
