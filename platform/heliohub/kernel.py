"""The "Python 3 (heliohub)" kernel: IPython with heliohub, xarray and hvplot imported and the catalog read.

Started by ``kernels/heliohub/kernel.json`` (``python -m heliohub.kernel -f {connection_file}``).
"""

from __future__ import annotations

import sys

STARTUP = [
    "import numpy as np",
    "import xarray as xr",
    "import hvplot.xarray",
    "import heliohub",
    "from heliohub import describe, open_dataset, search",
    # read the catalog once, so that searches and opens are fast from the first cell
    "try:\n    search()\nexcept heliohub.HeliohubError as _error:\n"
    "    print(f'heliohub: the archive store is not reachable: {_error}')",
]


def main() -> None:
    from ipykernel.kernelapp import IPKernelApp
    from traitlets.config import Config

    config = Config()
    config.IPKernelApp.exec_lines = STARTUP
    IPKernelApp.launch_instance(argv=sys.argv[1:], config=config)


if __name__ == "__main__":
    main()
