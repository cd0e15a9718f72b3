"""EasySR: 3-D generator/discriminator for through-plane super-resolution (Heo et al.,
``hwonheo/easysr``).  The released weights were trained on rat brain at 0.15 mm; for
other data train your own (``srprep-train easysr``).

The generator (``ResnetGenerator``: ngf 32, two BatchNorm residual blocks, a global
skip, a transposed-convolution up-block along **one** axis and a linear output conv) and
the discriminator (``PatchDiscriminator``: ndf 3, four stride-2 conv-BN-LeakyReLU blocks,
conv5 and a fully connected head) carry the reference's module names, so the released
``G_latest_{T1,Mixed}.pth``/``D_latest_{T1,Mixed}.pth`` (raw state_dicts saved from CUDA)
load strictly on the CPU.  Forward passes take the reference's single tensor (B,1,D,H,W).

Deviations from the reference code (documented, fixed on purpose):

* **Inference axis**: the reference trains the ×3 up-block on array axis 1 but at
  inference feeds a rotated volume whose thick axis is axis 2, so the learned upsampling
  acts on an in-plane axis.  srprep reads the thick-slice axis from the header and moves
  it onto the generator's up-sampling axis (:func:`generate`).
* **Intensity scale**: the reference writes outputs in its 0-255 network scale.  srprep
  normalises with an affine map (z-score then min-max to [0, 255], the reference's
  inference recipe; the training-time ±2.58 clip is not used, so the map is invertible)
  and maps the output back to the input's scale.
* **Adversarial term**: the reference's generator loss is the MSE only (the
  discriminator never influences it) and its discriminator loss applies a second sigmoid
  (BCE-with-logits on probabilities).  srprep trains ``content + λ·adversarial`` with the
  discriminator's logits (:meth:`PatchDiscriminator.logits`).
* **BatchNorm frozen after epoch 1**: the reference calls ``generator.eval()`` for
  validation and never ``train()`` again; srprep switches back every epoch.
* **Fixed discriminator input**: the reference's FC head accepts only 128×192×128
  volumes.  Feature maps of any other size are adaptively average-pooled to the head's
  grid (7×11×7 for the released model, where pooling is the identity), so the official
  discriminator loads unchanged and new ones train on patches of any size.
* **Any factor and axis**: the up-block's factor (×3 released) and axis are parameters;
  a checkpoint's are read from the shape of ``deup.deupblock.0.weight``.
* **Best checkpoint** is chosen on validation PSNR, not on the lowest training loss.
* **Training pairs**: thick slices are box means of ``f`` thin slices (the reference
  point-samples a corner-aligned cubic zoom, which shifts slices by up to one voxel relative
  to the sub-voxel geometry used at inference), along a random axis, both images mapped
  with the thick image's intensity map (the reference normalises them independently).
* **Grids**: the reference resamples every input to 0.15 mm isotropic before the network.
  srprep runs the generator on the acquired grid (no resampling before the network, so
  no acquired slice is skipped or blurred when the thickness is not factor x the output
  voxel) and resamples its sub-slices once to the requested voxel
  (:func:`srprep.core.throughplane.sr_grids`).
* **Residual option** (new models only, recorded in the ``.json`` sidecar): srprep-trained
  generators add the linearly upsampled input to the output by default
  (:class:`ResidualGenerator`); ``--no-residual`` trains the released form.

Layout: ``network`` (generator, discriminator, checkpoint I/O), ``inference`` (slab-wise
generation, file entry point), ``data`` (training volumes and patch pairs), ``train``
(adversarial training, validation, held-out evaluation).  Pydra tasks:
:mod:`srprep.tasks.easysr`; workflows: :mod:`srprep.pipelines.easysr`; App adapter:
:mod:`srprep.bids_app.methods.easysr`; training command: :mod:`srprep.bids_app.cli.train.easysr`.
"""
from .inference import generate, infer_file
from .network import (OFFICIAL_D, OFFICIAL_G, OFFICIAL_HR_SHAPE, PatchDiscriminator,
                      ResidualGenerator, ResnetGenerator, discriminator_config,
                      expected_discriminator_shapes, expected_generator_shapes,
                      from_official_checkpoint, generator_config, is_generator_state,
                      model_info, save_checkpoint)

__all__ = ["OFFICIAL_D", "OFFICIAL_G", "OFFICIAL_HR_SHAPE", "PatchDiscriminator",
           "ResidualGenerator", "ResnetGenerator", "discriminator_config",
           "expected_discriminator_shapes", "expected_generator_shapes",
           "from_official_checkpoint", "generate", "generator_config", "infer_file",
           "is_generator_state", "model_info", "save_checkpoint"]
