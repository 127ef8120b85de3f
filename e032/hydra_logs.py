"""Where Hydra writes a run's log: never into a folder that a mistyped ``path.root`` invents.

Hydra creates its run folder (``hydra.run.dir``) and log file before the script can check its
paths, so a mistyped ``path.root`` used to leave ``<typo>/e032/hydra/<time>/`` behind. The
``e032_log_dir`` resolver of ``config.yaml`` returns ``<exp_folder>/hydra/<name>`` only when the
experiment folder or the training archive exists, and otherwise a folder under the system's
temporary directory. Importing this module registers the resolver.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from omegaconf import OmegaConf

RESOLVER = "e032_log_dir"


def log_dir(exp_folder: str, data_folder: str, name: str) -> str:
    """``<exp_folder>/hydra/<name>`` if ``exp_folder`` or ``data_folder`` exists, else a temp folder.

    Examples
    --------
    >>> log_dir("/no/such/root/e032", "/no/such/root/data", "t").endswith("e032-hydra/t")
    True
    """
    if Path(exp_folder).expanduser().is_dir() or Path(data_folder).expanduser().is_dir():
        return str(Path(exp_folder) / "hydra" / name)
    return str(Path(tempfile.gettempdir()) / "e032-hydra" / name)


OmegaConf.register_new_resolver(RESOLVER, log_dir, replace=True)
