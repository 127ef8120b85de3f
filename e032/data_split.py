"""Train/dev split of the CPC1 training scenes (``docs/original_recipe.md`` §2.1).

The unit is the scene: every signal (all listeners and systems) of a dev scene goes to dev.
``floor(n_scenes * dev_percent)`` scenes are drawn for dev, the rest form train.

The original drew the dev scenes with an unseeded ``random.sample`` from ``list(set(scenes))``,
whose order depends on the per-process string-hash seed, so its split could not be reproduced. Here
the population is the *sorted* list of unique scenes and the draw uses a ``numpy`` generator seeded
from the config: the same inputs and seed always give the same split. The lists are stored as JSON
(sorted scene IDs) and reused when both exist, as in the original.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from e032.io import read_json, write_json_atomic

logger = logging.getLogger(__name__)


def unique_scenes(records: Iterable[dict]) -> list[str]:
    """Sorted unique ``scene`` values of CPC1 response records.

    Examples
    --------
    >>> unique_scenes([{"scene": "S2"}, {"scene": "S1"}, {"scene": "S2"}])
    ['S1', 'S2']
    """
    return sorted({str(record["scene"]) for record in records})


def split_scenes(scenes: Iterable[str], dev_percent: float, seed: int) -> tuple[list[str], list[str]]:
    """Draw ``floor(n * dev_percent)`` dev scenes with a seeded generator.

    Parameters
    ----------
    scenes : scene IDs (duplicates are ignored; the input order does not matter).
    dev_percent : fraction of scenes for dev, in [0, 1].
    seed : seed of the ``numpy.random.default_rng`` draw.

    Returns
    -------
    train, dev : sorted lists of scene IDs, disjoint, together all scenes.

    Raises
    ------
    ValueError
        If ``dev_percent`` is outside [0, 1].

    Examples
    --------
    >>> train, dev = split_scenes(["S3", "S1", "S2", "S4"], 0.5, seed=0)
    >>> len(dev), sorted(train + dev)
    (2, ['S1', 'S2', 'S3', 'S4'])
    """
    if not 0.0 <= float(dev_percent) <= 1.0:
        raise ValueError(f"dev_percent must be in [0, 1], got {dev_percent}")
    population = sorted(set(scenes))
    n_dev = math.floor(len(population) * float(dev_percent))
    rng = np.random.default_rng(int(seed))
    dev_index = rng.choice(len(population), size=n_dev, replace=False)
    dev = sorted(population[i] for i in dev_index)
    dev_set = set(dev)
    train = [scene for scene in population if scene not in dev_set]
    return train, dev


def load_or_make_split(
    train_list: Path,
    dev_list: Path,
    records: list[dict],
    dev_percent: float,
    seed: int,
    settings_path: Path | None = None,
) -> tuple[list[str], list[str], bool]:
    """Return the stored split if both list files exist, else draw it and store it.

    The settings that drew the lists (``dev_percent``, ``split_seed``) are stored in
    ``settings_path``; reusing the lists with other settings is refused. Lists without stored
    settings are taken as given (the user's own split, as the original reused any lists), unless
    they are exactly the draw of this run's settings, whose settings are then stored.

    Parameters
    ----------
    train_list, dev_list : paths of ``scene_{train,dev}_list<track>.json``.
    records : the CPC1 training response records of the track.
    dev_percent, seed : as in :func:`split_scenes`.
    settings_path : where the split's settings are stored (None: not stored, not checked).

    Returns
    -------
    train, dev : lists of scene IDs.
    reused : True if the stored lists were used.

    Raises
    ------
    ValueError
        If a stored list is not a JSON list of strings, if the two lists overlap, if a training
        scene is in neither list (the lists belong to other data: delete them to redraw), or if
        the stored settings differ from ``dev_percent`` / ``seed`` (naming both values).
    """
    settings = {"dev_percent": float(dev_percent), "split_seed": int(seed)}
    if train_list.is_file() and dev_list.is_file():
        train = read_scene_list(train_list)
        dev = read_scene_list(dev_list)
        _check_stored_split(train, dev, unique_scenes(records), train_list, dev_list)
        if settings_path is not None:
            _check_split_settings(settings_path, settings, (train, dev), records, (train_list, dev_list))
        logger.info("reusing the scene split %s / %s", train_list, dev_list)
        return train, dev, True
    train, dev = split_scenes(unique_scenes(records), dev_percent, seed)
    # settings, then dev, then train: a run killed in between leaves no pair, and the re-run
    # redraws the same split.
    if settings_path is not None:
        write_json_atomic(settings_path, settings)
    write_json_atomic(dev_list, dev)
    write_json_atomic(train_list, train)
    logger.info(
        "split %d scenes: %d train, %d dev (seed %d)", len(train) + len(dev), len(train), len(dev), seed
    )
    return train, dev, False


def _check_split_settings(
    settings_path: Path, settings: dict, stored_split: tuple, records: list[dict], lists: tuple[Path, Path]
) -> None:
    """Refuse stored lists drawn with other settings; adopt or accept lists without settings."""
    dev_list = lists[1]
    if not settings_path.is_file():
        draw = split_scenes(unique_scenes(records), settings["dev_percent"], settings["split_seed"])
        if draw == stored_split:
            write_json_atomic(settings_path, settings)  # lists of an older run: adopt them
        else:
            logger.warning(
                "using the stored scene split %s as given: it is not the draw of "
                "dev_percent=%s, split_seed=%s",
                dev_list,
                settings["dev_percent"],
                settings["split_seed"],
            )
        return
    stored = read_json(settings_path, what="scene split settings")
    changed = [
        f"{key}: stored {stored.get(key)!r}, this run {value!r}"
        for key, value in settings.items()
        if stored.get(key) != value
    ]
    if changed:
        raise ValueError(
            f"the stored scene split {dev_list} was drawn with other settings "
            f"({'; '.join(changed)}): run with the stored values, or delete "
            f"{', '.join(str(p) for p in (*lists, settings_path))} to redraw the split (and "
            "retrain the ASR on it)"
        )


def read_scene_list(path: str | Path) -> list[str]:
    """Read a stored scene list of the split (a JSON list of scene IDs).

    Raises
    ------
    FileNotFoundError, ValueError
        If the file is missing, not JSON, or not a list of strings.
    """
    scenes = read_json(path, what="scene split list")
    if not isinstance(scenes, list) or not all(isinstance(s, str) for s in scenes):
        raise ValueError(f"scene split list {path} must be a JSON list of scene IDs (strings)")
    return scenes


def _check_stored_split(
    train: list[str], dev: list[str], scenes: list[str], train_list: Path, dev_list: Path
) -> None:
    overlap = sorted(set(train) & set(dev))
    if overlap:
        raise ValueError(
            f"stored split lists {train_list} and {dev_list} share scenes {overlap[:5]}; "
            "delete both files to redraw the split"
        )
    missing = sorted(set(scenes) - set(train) - set(dev))
    if missing:
        raise ValueError(
            f"{len(missing)} training scene(s) (e.g. {missing[:5]}) are in neither {train_list} "
            f"nor {dev_list}: the stored split was made for other data; delete both files to redraw"
        )
