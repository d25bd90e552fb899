"""Constants several test files share, defined once (``from helpers import TINY, CPU``).

They live here, not in ``conftest.py``, because two conftest modules (``tests/`` and
``tests/browser/``) share the module name ``conftest``, so ``from conftest import`` is ambiguous.
Fixtures shared by several files live in ``conftest.py``.
"""

import torch

from explodegrad.core.device import DeviceChoice
from explodegrad.core.scales import Scale

#: The test-only scale: a 6-deep, 8-wide network trained for 6 steps on 64 Gaussian examples
#: (the ``data`` fixture of ``conftest.py``); seconds per study, numbers that mean little.
TINY = Scale(
    name="tiny", depth=6, width=8, batch_size=16, train_steps=6, dataset="gaussian", n_train=64, n_test=16
)
#: The setup's device choice, pinned to the CPU, for code that takes one.
CPU = DeviceChoice(torch.device("cpu"), "CPU", "test")
