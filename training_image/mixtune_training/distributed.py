"""Where this process stands in a torchrun / accelerate / hyperpodrun launch (from the environment)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass


@dataclass(frozen=True)
class Ranks:
    rank: int
    local_rank: int
    world_size: int
    local_world_size: int

    @classmethod
    def from_env(cls) -> Ranks:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        return cls(
            rank=int(os.environ.get("RANK", "0")),
            local_rank=int(os.environ.get("LOCAL_RANK", "0")),
            world_size=world,
            local_world_size=int(os.environ.get("LOCAL_WORLD_SIZE", str(world))),
        )

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def is_local_main(self) -> bool:
        return self.local_rank == 0

    @property
    def nodes(self) -> int:
        return max(self.world_size // max(self.local_world_size, 1), 1)


def _state():  # type: ignore[no-untyped-def]
    import torch
    from accelerate import PartialState

    # cpu=True makes several CPU processes one gloo group, as the trainer's use_cpu does
    return PartialState(cpu=not torch.cuda.is_available())


@contextmanager
def main_process_first() -> Iterator[None]:
    """Global rank 0 runs the block first; the others run it once it is done (a barrier)."""
    if Ranks.from_env().world_size == 1:
        yield
        return
    with _state().main_process_first():
        yield


def wait_for_everyone() -> None:
    if Ranks.from_env().world_size > 1:
        _state().wait_for_everyone()
