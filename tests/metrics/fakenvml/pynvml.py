"""``import pynvml`` in a worker process started with this folder first on PYTHONPATH: the
fake NVML device of tests/nvml_fake.py, replaying the feed that AIINFRA_TEST_NVML_FEED names."""

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # tests/, for nvml_fake

from nvml_fake import fake_pynvml, load_feed  # noqa: E402

sys.modules[__name__] = fake_pynvml(load_feed(Path(os.environ["AIINFRA_TEST_NVML_FEED"])))
