"""Write the real T1w/PD pair of ``tests/data/real`` as a BIDS dataset for ``srprep-eval``.

One participant (``sub-chris``): ``T1w``, the 0.88 mm MPRAGE box-averaged to
``--resolution`` (the thin-slice truth ``srprep-eval`` degrades), and ``PDw``, the same
person's real oblique 0.86 x 0.86 x 2.4 mm stack as shipped (``--pd acquired``) or
averaged 2x in-plane (``--pd 2x``, 4x fewer voxels to fit).  The PD is anisotropic, so
``srprep-eval`` can only give it unchanged: ``--keep-iso PDw``.  Figures in RESULTS.md
("srprep-eval through the App")::

    python benchmarks/real_pair_bids.py /tmp/real-bids --pd acquired
    srprep-eval /tmp/real-eval --bids-dir /tmp/real-bids --keep-iso PDw \\
        --methods unires unires-single --thickness 5.28 --axes 1 --noise 0 --no-dwi
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.helpers import real_pair, write_anat_dataset  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("bids_dir", type=Path)
    p.add_argument("--resolution", type=float, default=1.76, help="the truth's voxel size (mm)")
    p.add_argument("--pd", choices=["acquired", "2x"], default="acquired")
    opts = p.parse_args(argv)
    (truth, affine), inputs = real_pair(opts.resolution)
    pd = inputs["PDw" if opts.pd == "acquired" else "PDw2x"]
    write_anat_dataset(opts.bids_dir, {("chris", "T1w"): (truth, affine),
                                       ("chris", "PDw"): pd}, "srprep real pair")
    print(opts.bids_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
