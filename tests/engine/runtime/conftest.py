import pytest
import torch


@pytest.fixture(scope="module")
def tiny_engine():
    """The real tiny engine on CPU, random weights (one per module: building it is cheap, running it isn't)."""
    from engine.api import load_engine
    from engine.config import EngineConfig

    torch.set_num_threads(1)  # the CI box is 2 shared cores; more threads only add contention
    return load_engine(EngineConfig.tiny(), device="cpu")
