"""The world of one used where no MPI library loads."""

import numpy as np
import pytest

from dtorch.collectives.base import ReduceOp
from dtorch.collectives.local import LocalCommunicator


def test_world_of_one_collectives_copy():
    comm = LocalCommunicator()
    x = np.arange(4.0)
    comm.allreduce(None, x, ReduceOp.AVG)
    assert x.tolist() == [0, 1, 2, 3]
    out = np.empty(4)
    comm.allgather(x, out)
    assert out.tolist() == [0, 1, 2, 3]
    assert comm.allgather_bytes(b"ab") == [b"ab"]
    with pytest.raises(ValueError, match="outside a group of one"):
        comm.bcast(x, 1)
    with pytest.raises(RuntimeError, match="no other rank"):
        comm.send(x, 0)
    assert comm.split([0]).size == 1 and comm.split([1]) is None
