"""``python3 -m trainer.torchrun ARGS`` is ``python3 -m torch.distributed.run ARGS`` (``torchrun``), with one upstream
bug fixed where it bites: PyTorch < 2.0 on Python >= 3.11 (Debian bookworm's ``python3-torch`` 1.13 on Python 3.11).

There, ``torch.distributed.elastic.multiprocessing.api.Std.from_str("0")`` returns None (Python 3.11 stopped
iterating an ``IntFlag``'s zero and multi-bit members), so every torchrun without ``--redirects``/``--tee`` dies
in ``to_map`` with ``AttributeError: 'NoneType' object has no attribute 'get'`` before starting a worker
(fixed in PyTorch 2.0). This module replaces that one parser with ``Std(int(v))`` and runs torchrun's own
``main``; on a PyTorch that parses ``"0"`` correctly it changes nothing. Everything else (rendezvous, elastic
agent, worker processes) is torchrun's.
"""
from __future__ import annotations

import re

from torch.distributed.elastic.multiprocessing import api


def _from_str(cls, vm: str):
    """``Std.from_str`` as PyTorch 2.x parses it: ``"0"``..``"3"`` -> ``Std``; ``"0:3,1:0"`` -> ``{rank: Std}``.
    Raises ValueError for anything else."""
    if re.match(api._VALUE_REGEX, vm):
        return cls(int(vm))
    if re.match(api._MAPPING_REGEX, vm):
        return {int(i): cls(int(v)) for i, v in (m.split(":") for m in vm.split(","))}
    raise ValueError(f"{vm} does not match: <{api._VALUE_REGEX}> or <{api._MAPPING_REGEX}>")


def patch() -> bool:
    """Install :func:`_from_str` when this PyTorch needs it; True when it did."""
    if isinstance(api.Std.from_str("0"), api.Std):
        return False
    api.Std.from_str = classmethod(_from_str)
    return True


if __name__ == "__main__":
    patch()
    from torch.distributed.run import main
    main()
