"""The service's process-level memory settings: harmless to call anywhere (their effect is measured in
bench/ingest.py and bench/memory_day.py: glibc's behaviour on a small test heap proves nothing either way)."""

from __future__ import annotations

import gc

from stackwatch.heap import release_free_memory, settle_heap, tune_allocator


def test_allocator_settings_and_trim_can_be_called_more_than_once() -> None:
    tune_allocator()
    tune_allocator()
    release_free_memory()


def test_settle_heap_moves_what_exists_out_of_the_collectors_reach() -> None:
    try:
        settle_heap()
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
