"""virnet.heap: freed memory is kept for the next tile instead of being faulted in again."""

import resource

import pytest
import torch

from virnet import heap

BLOCK = 64 * 2**20 // 4  # float32 values in 64 MiB: above glibc's largest mmap threshold (32 MiB)


def page_faults_of_repeated_blocks(times: int = 8) -> int:
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(times):
        block = torch.ones(BLOCK)  # written, so every page is touched
        del block
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before


@pytest.mark.skipif(not heap.available(), reason="needs glibc")
def test_inside_the_context_a_freed_block_is_reused_without_page_faults():
    outside = page_faults_of_repeated_blocks()
    with heap.reuse_freed_memory():
        inside = page_faults_of_repeated_blocks()
    pages = BLOCK * 4 // resource.getpagesize()
    assert outside > 7 * pages  # every block is a fresh mapping
    # Only the first block or two are faulted in (a heap fragmented by earlier tests may not
    # have a hole big enough for the first one), not all eight.
    assert inside < 2.5 * pages


def test_the_context_nests_and_does_nothing_harmful_without_glibc(monkeypatch):
    with heap.reuse_freed_memory(), heap.reuse_freed_memory():
        assert torch.ones(10).sum() == 10
    monkeypatch.setattr(heap, "_glibc", lambda: None)
    with heap.reuse_freed_memory():
        assert torch.ones(10).sum() == 10
