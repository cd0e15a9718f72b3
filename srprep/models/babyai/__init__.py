"""BABY-AI: residual U-Net mapping [isotropic T1w, interpolated thick-slice T2w] to an
isotropic T2w (Lennartsson, Lund University; ``almalennartsson-dev/baby-ai-local``).

The network is MONAI's ``UNet`` with the released configuration (channels 32..1024,
five stride-2 levels, 10 residual sub-units per encoder block, no normalisation), so the
published ``pretrained_weights.pth`` (a raw state_dict of 221 tensors, 379 M parameters)
loads unchanged.  Inputs are (B, 2, D, H, W) with channels [T1w, T2w]; every spatial
size must be a multiple of 32.

Deviations from the reference code (documented, fixed on purpose):

* **Multi-file naming**: the reference inference script reuses its loop variable for the
  patch loop, so every output is named after the last patch index (IndexError or a
  wrong name with several subjects).  Outputs here are named from BIDS entities.
* **Glob mismatch**: the reference training script looks for ``*T2w_LR.nii.gz`` while its
  synthesis script writes ``*_T2w_LR<k>.nii.gz``; training pairs are built here from the
  synthesis task's outputs directly.
* **Silent CPU fallback**: the reference trains on CUDA only when ``SLURM_GPUS_ON_NODE``
  is set and silently falls back to the CPU otherwise; the device here comes from
  ``--device`` and ``cuda`` without a GPU is an error.
* **Output**: the reference writes the padded 192x224x192 volume in normalised units;
  srprep crops back to the atlas grid, restores the T2w's intensity scale and returns to
  the subject's native T1w grid with the T2w interpolated once: a cubic reslice of the
  T2w straight onto the T1w grid plus the network's correction (output minus its own
  input) carried back from the atlas (``inference.residual_to_native``).  Resampling the
  output itself back cost a second interpolation of everything (App test at 2 mm:
  22.0 dB, now 22.56, cubic 22.78).
* **Alignment** (the reference leaves registration to the user): the T1w is registered to
  the atlas and the T2w to the session's T1w, the transforms composed (one interpolation
  per channel, channels aligned with each other); inputs already on the atlas grid are
  used as they are.  The default atlas is the one the weights were trained on.

Layout: ``network`` (U-Net, official checkpoint I/O), ``inference`` (windowed prediction
on the atlas grid), ``data`` (thick-slice training pairs, patch sampling), ``train``
(Lightning training and held-out evaluation).  Pydra tasks: :mod:`srprep.tasks.babyai`;
workflows: :mod:`srprep.pipelines.babyai`; App adapter: :mod:`srprep.bids_app.methods.babyai`;
training command: :mod:`srprep.bids_app.cli.train.babyai`.
"""
from .inference import infer_files
from .network import (OFFICIAL, SMALL, build_network, expected_shapes, from_official_checkpoint,
                      infer_config, save_official_checkpoint)

__all__ = ["OFFICIAL", "SMALL", "build_network", "expected_shapes", "from_official_checkpoint",
           "infer_config", "infer_files", "save_official_checkpoint"]
