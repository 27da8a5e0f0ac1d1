import pytest

from wgan_jax import loop


@pytest.mark.parametrize("total, longest, every", [
    (4000, 50, (50, 50)), (2000, 1, (25, 100)), (103, 40, (25, 10)), (7, 100, (50,)), (10, 3, (4,)),
])
def test_chunks_cover_the_run_and_end_on_every_log_and_sample_point(total, longest, every):
    lengths = loop.chunk_lengths(total, longest, *every)
    assert sum(lengths) == total and all(1 <= n <= longest for n in lengths)
    ends = set()
    done = 0
    for n in lengths:
        done += n
        ends.add(done)
    for e in every:
        assert set(range(e, total + 1, e)) <= ends
    assert total in ends


def test_chunk_lengths_take_few_distinct_values():
    """Each distinct length is one compilation."""
    assert set(loop.chunk_lengths(4000, 50, 50, 50)) == {50}
    assert len(set(loop.chunk_lengths(2010, 100, 25, 100))) <= 3
