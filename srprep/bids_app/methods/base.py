"""What the BIDS App needs to know about a method: inputs, workflow, derivatives."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..naming import BIDSName
from ..query import SourceImage


@dataclass
class Job:
    """One unit of method work: the source images one workflow state consumes."""

    method: str
    sources: list[SourceImage]
    params: dict = field(default_factory=dict)

    @property
    def label(self) -> str:
        return ",".join(s.name.filename for s in self.sources)


@dataclass
class Derivative:
    """One file set to export: a NIfTI from the cache, its BIDS name and sidecar."""

    name: BIDSName
    datatype: str
    file: Path
    sidecar: dict
    sources: list[SourceImage]
    extra_files: dict[str, Path] = field(default_factory=dict)  # extension -> file

    @property
    def relpath(self) -> str:
        return f"{self.name.directory(self.datatype)}/{self.name.filename}"


@dataclass(frozen=True)
class MethodSpec:
    """Plug-in description of a method for the BIDS App.

    Attributes:
        plan: sources of one participant + settings -> jobs.
        build: jobs + settings -> one Pydra task (usually a split workflow).
        collect: job, its outputs (field -> value) and settings -> derivatives.
    """

    name: str
    description: str
    datatypes: tuple[str, ...]
    plan: Callable[[list[SourceImage], Any], list[Job]]
    build: Callable[[list[Job], Any], Any]
    collect: Callable[[Job, dict, Any], list[Derivative]]
    output_fields: tuple[str, ...] = ("out_file",)
    needs_weights: bool = False
    #: workflow nodes that run on the GPU when one is used (get GPU resources on SLURM)
    gpu_nodes: tuple[str, ...] = ()


def on_grid(image_file, source: SourceImage) -> bool:
    """Whether an output lies voxel for voxel on a source image's grid."""
    from srprep.core.register import same_grid

    return same_grid(image_file, source.path)


def grid_space(image_file, own: list[SourceImage], others: list[SourceImage]
               ) -> tuple[str | None, SourceImage | None]:
    """The ``space-`` label and spatial reference of an output.

    On one of its own sources' grid: no ``space-`` (native), that source.  On another
    input's grid (e.g. a T2w reconstructed on the session's T1w): ``space-<its suffix>``
    (``space-T1w``) and that input.  On neither: (None, None)."""
    for src in own:
        if on_grid(image_file, src):
            return None, src
    for src in others:
        if on_grid(image_file, src):
            return src.name.suffix, src
    return None, None
