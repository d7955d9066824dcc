"""Shared test setup."""

import pytest
import torch


@pytest.fixture(autouse=True)
def one_thread():
    """Run every test on one intra-op thread. The tests' tensors are small, far below where a
    second thread pays off, and on a machine whose cores are shared, waiting for a second
    thread costs milliseconds per operation (a small convolution ran 5-35x slower on two)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
