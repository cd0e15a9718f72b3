"""BIDS file names: parsing sources and building derivative names in schema order."""
from __future__ import annotations

import re
from dataclasses import dataclass, field

#: entity order of the BIDS schema (1.10); derivative entities ``space``, ``res``,
#: ``den``, ``label`` and ``desc`` come last, ``desc`` last of all.
ENTITY_ORDER = (
    "sub", "ses", "sample", "task", "tracksys", "acq", "nuc", "voi", "ce", "trc", "stain",
    "rec", "dir", "run", "mod", "echo", "flip", "inv", "mt", "part", "proc", "hemi",
    "space", "split", "recording", "chunk", "seg", "res", "den", "label", "desc",
)
_LABEL = re.compile(r"^[a-zA-Z0-9]+$")
_EXTENSIONS = (".nii.gz", ".nii", ".json", ".bval", ".bvec", ".tsv", ".html", ".png", ".svg")


@dataclass(frozen=True)
class BIDSName:
    """A parsed BIDS file name: entities in order, suffix and extension."""

    entities: dict[str, str] = field(default_factory=dict)
    suffix: str = ""
    extension: str = ""

    @classmethod
    def parse(cls, name: str) -> BIDSName:
        """Parse ``sub-01_ses-1_acq-x_T2w.nii.gz`` (a path's last component is used)."""
        base = name.replace("\\", "/").rsplit("/", 1)[-1]
        ext = next((e for e in _EXTENSIONS if base.endswith(e)), "")
        if not ext and "." in base:
            ext = base[base.index("."):]
        stem = base[: len(base) - len(ext)] if ext else base
        parts = stem.split("_")
        if len(parts) < 2 or not parts[0].startswith("sub-"):
            raise ValueError(f"not a BIDS file name: {base}")
        entities: dict[str, str] = {}
        for part in parts[:-1]:
            key, sep, value = part.partition("-")
            if not sep or not value:
                raise ValueError(f"bad entity {part!r} in {base}")
            entities[key] = value
        return cls(entities, parts[-1], ext)

    def with_entities(self, **updates: str | None) -> BIDSName:
        """Copy with entities added/replaced (``None`` removes one)."""
        ent = dict(self.entities)
        for key, value in updates.items():
            if value is None:
                ent.pop(key, None)
            else:
                if not _LABEL.match(str(value)):
                    raise ValueError(f"BIDS labels are alphanumeric: {key}-{value}")
                ent[key] = str(value)
        return BIDSName(ent, self.suffix, self.extension)

    def replace(self, *, suffix: str | None = None, extension: str | None = None) -> BIDSName:
        return BIDSName(dict(self.entities), suffix if suffix is not None else self.suffix,
                        extension if extension is not None else self.extension)

    @property
    def filename(self) -> str:
        known = [k for k in ENTITY_ORDER if k in self.entities]
        unknown = [k for k in self.entities if k not in ENTITY_ORDER]
        parts = [f"{k}-{self.entities[k]}" for k in known + unknown]
        return "_".join(parts + [self.suffix]) + self.extension

    def directory(self, datatype: str) -> str:
        """Relative folder ``sub-<l>[/ses-<l>]/<datatype>``."""
        folder = f"sub-{self.entities['sub']}"
        if "ses" in self.entities:
            folder += f"/ses-{self.entities['ses']}"
        return f"{folder}/{datatype}"


def resolution_label(voxel_size: list[float] | tuple[float, ...] | float) -> str:
    """``res-`` label for a voxel size: 1.0 -> ``1mm``, 0.5 -> ``0p5mm``,
    (1, 1, 2) -> ``1x1x2mm``."""
    sizes = [float(voxel_size)] * 3 if isinstance(voxel_size, (int, float)) else [float(v) for v in voxel_size]

    def fmt(v: float) -> str:
        return (f"{v:.3f}".rstrip("0").rstrip(".")).replace(".", "p")

    if len(set(round(v, 6) for v in sizes)) == 1:
        return f"{fmt(sizes[0])}mm"
    return "x".join(fmt(v) for v in sizes) + "mm"


def clean_label(label: str, prefix: str) -> str:
    """Strip an optional ``sub-``/``ses-`` prefix and check the label is alphanumeric."""
    value = label[len(prefix) + 1:] if label.startswith(prefix + "-") else label
    if not _LABEL.match(value):
        raise ValueError(f"invalid {prefix} label {label!r}: BIDS labels are letters and digits only")
    return value
