"""The CPC1 open/closed track, resolved once into file names and paths.

The closed track uses ``CPC1.train.json`` / ``HA_outputs/train`` and so on; the open track adds the
suffix ``_indep`` to the response lists, the HA-output folders, the split lists and the ASR data
folder (``docs/original_recipe.md`` §1.4). Unlike the original, result files carry the
track too, so the two tracks can share one ``exp_folder``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

TrackName = Literal["closed", "open"]
TRACK_SUFFIX: dict[str, str] = {"closed": "", "open": "_indep"}


@dataclass(frozen=True)
class TrackPaths:
    """Every path of one track; build it with :func:`resolve_track`."""

    track: str
    suffix: str  # "" (closed) or "_indep" (open)
    train_data: Path  # <root>/clarity_CPC1_data_train
    test_data: Path  # <root>/clarity_CPC1_data_test
    exp_folder: Path
    test_labels_dir: Path
    msbg_root: Path | None = None  # where MSBG outputs go; None = <exp_folder>/msbg
    asr_data_stem: str = "cpc1_asr_data"  # <exp>/<stem><suffix>: CPC2/CPC3 use "asr_data"

    # --- inputs -------------------------------------------------------------------------------
    def responses_json(self, split: Literal["train", "test"]) -> Path:
        """``CPC1.<split><suffix>.json`` in that archive's metadata folder."""
        data = self.train_data if split == "train" else self.test_data
        return data / "metadata" / f"CPC1.{split}{self.suffix}.json"

    def listeners_json(self, split: Literal["train", "test"]) -> Path:
        """Train uses ``listeners.CPC1_train.json``; test uses ``listeners.CPC1_all.json``."""
        if split == "train":
            return self.train_data / "metadata" / "listeners.CPC1_train.json"
        return self.test_data / "metadata" / "listeners.CPC1_all.json"

    def ha_output_dir(self, split: Literal["train", "test"]) -> Path:
        """Folder of the hearing-aid outputs ``<signal>.wav``."""
        data = self.train_data if split == "train" else self.test_data
        return data / "clarity_data" / "HA_outputs" / f"{split}{self.suffix}"

    def scenes_dir(self, split: Literal["train", "test"]) -> Path:
        """Folder of ``<scene>_target_anechoic.wav``."""
        data = self.train_data if split == "train" else self.test_data
        return data / "clarity_data" / "scenes"

    def test_labels_json(self) -> Path:
        """Test labels, kept apart from the data (``CPC1.test<suffix>.json``)."""
        return self.test_labels_dir / f"CPC1.test{self.suffix}.json"

    # --- outputs ------------------------------------------------------------------------------
    def split_list(self, part: Literal["train", "dev"]) -> Path:
        """``<exp>/data_split/scene_<part>_list<suffix>.json``."""
        return self.exp_folder / "data_split" / f"scene_{part}_list{self.suffix}.json"

    @property
    def split_settings(self) -> Path:
        """``<exp>/data_split/split_settings<suffix>.json``: the settings that drew the split."""
        return self.exp_folder / "data_split" / f"split_settings{self.suffix}.json"

    def msbg_dir(self, split: Literal["train", "test"]) -> Path:
        """Where ``<signal>_HL-output.wav`` files go (under exp_folder, not the dataset)."""
        root = self.msbg_root if self.msbg_root is not None else self.exp_folder / "msbg"
        return root / f"{split}{self.suffix}"

    def ha_output_wav(self, split: Literal["train", "test"], signal: str) -> Path:
        """The hearing-aid output ``<signal>.wav`` (input of MSBG)."""
        return self.ha_output_dir(split) / f"{signal}.wav"

    def target_wav(self, split: Literal["train", "test"], scene: str) -> Path:
        """The clean reference ``scenes/<scene>_target_anechoic.wav``."""
        return self.scenes_dir(split) / f"{scene}_target_anechoic.wav"

    def msbg_wav(self, split: Literal["train", "test"], signal: str) -> Path:
        """The MSBG output ``<signal>_HL-output.wav`` (2 ch, 44.1 kHz, float)."""
        return self.msbg_dir(split) / f"{signal}_HL-output.wav"

    def asr_wav(
        self,
        split: Literal["train", "test"],
        ear: Literal["left", "right"],
        kind: Literal["msbg", "ref"],
        name: str,
    ) -> Path:
        """A mono 16 kHz file: ``<asr_data_dir>/<split><suffix>_<ear>_<kind>/<name>.wav``.

        ``name`` is the signal ID for ``msbg`` and the scene ID for ``ref`` (one reference file per
        scene). The folder names are those of the June-2022 original (``train_left_msbg``, ...).
        """
        return self.asr_data_dir / f"{split}{self.suffix}_{ear}_{kind}" / f"{name}.wav"

    def asr_csv(
        self,
        ear: Literal["left", "right", "binaural"],
        part: Literal["train", "dev", "test"],
        kind: Literal["msbg", "ref"],
    ) -> Path:
        """``<asr_data_dir>/<ear>_<part>_<kind>.csv`` (SpeechBrain manifest)."""
        return self.asr_data_dir / f"{ear}_{part}_{kind}.csv"

    @property
    def asr_dir(self) -> Path:
        """``<exp>/asr<suffix>``: the ASR's training output folder (``save/CKPT+*/``) by default."""
        return self.exp_folder / f"asr{self.suffix}"

    @property
    def asr_data_dir(self) -> Path:
        """``<exp>/cpc1_asr_data<suffix>``: 16 kHz mono files and the SpeechBrain CSVs.

        CPC2/CPC3 runs: ``<exp>/asr_data<suffix>`` (:func:`e032.datasets.run_track_paths`).
        """
        return self.exp_folder / f"{self.asr_data_stem}{self.suffix}"

    def similarity_json(self, part: Literal["dev", "test"], rep: Literal["enc", "dec"]) -> Path:
        """``<exp>/<part>_<rep>_similarity<suffix>.json`` (the original had no track suffix)."""
        return self.exp_folder / f"{part}_{rep}_similarity{self.suffix}.json"

    @property
    def results_json(self) -> Path:
        """``<exp>/results<suffix>.json``."""
        return self.exp_folder / f"results{self.suffix}.json"

    @property
    def results_plot(self) -> Path:
        """``<exp>/results<suffix>.png``: the logistic fits and the test predictions."""
        return self.exp_folder / f"results{self.suffix}.png"

    def submission_csv(self, part: Literal["dev", "test"], rep: Literal["enc", "dec"]) -> Path:
        """``<exp>/submission/<part>_<rep>_predictions<suffix>.csv`` (CPC1 submission format)."""
        return self.exp_folder / "submission" / f"{part}_{rep}_predictions{self.suffix}.csv"


def resolve_track(cfg) -> TrackPaths:
    """Resolve ``cfg.cpc1_track`` and ``cfg.path`` into a :class:`TrackPaths`.

    A config with ``dataset: cpc2`` or ``cpc3`` gets the paths of that run instead
    (:func:`e032.datasets.run_track_paths`); ``track`` is the newer name of ``cpc1_track``.

    Raises
    ------
    ValueError
        If ``cpc1_track`` (``track``) is not ``closed`` or ``open``.
    """
    if "dataset" in cfg:  # configs without the key (older or hand-built ones) are CPC1
        from e032.datasets import run_track_paths  # datasets imports this module

        paths = run_track_paths(cfg)
        if paths is not None:
            return paths
    track = str(cfg.track) if "track" in cfg else str(cfg.cpc1_track)
    if track not in TRACK_SUFFIX:
        name = "track" if "track" in cfg and str(cfg.cpc1_track) != track else "cpc1_track"
        raise ValueError(f"{name} must be 'closed' or 'open', got {track!r}")
    return TrackPaths(
        track=track,
        suffix=TRACK_SUFFIX[track],
        train_data=Path(cfg.path.cpc1_train_data).expanduser().resolve(),
        test_data=Path(cfg.path.cpc1_test_data).expanduser().resolve(),
        exp_folder=Path(cfg.path.exp_folder).expanduser().resolve(),
        test_labels_dir=Path(cfg.path.test_labels).expanduser().resolve(),
        msbg_root=_optional_path(getattr(cfg.path, "msbg_output_dir", None)),
    )


def _optional_path(value) -> Path | None:
    """``None`` (or an empty string) stays ``None``; anything else becomes a resolved Path."""
    if value is None or str(value) == "":
        return None
    return Path(str(value)).expanduser().resolve()
