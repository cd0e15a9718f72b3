"""PCCNN: parametric continuous spatio-angular convolutions for dMRI angular
super-resolution (Lyon, Armitage, Álvarez, NeurIPS 2023; ``m-lyon/dmri-pcconv``).

Every layer is a depthwise continuous convolution over (spatial tap, context q-point,
target q-point) whose kernel a small MLP (the *WeightNet*) generates from Fourier
features of the coordinate [tap position, angular distance, radial terms, (patch
centroid)], followed by a channel-mixing linear layer.  Four variants: ``PCCNN``,
``PCCNN-Bv`` (b-value aware angular kernel), ``PCCNN-Sp`` (global position) and
``PCCNN-Bv-Sp``.  The module tree, names and aliases follow the reference, so the
published LightningModule state_dicts (368 keys under ``pccnn.``) load strictly.

Deviations from the reference code (documented, fixed on purpose):

* **D1 Bv kernel**: the reference's Bv layers never use their b-value-aware angular
  kernel (a misnamed override) and crash; srprep uses [d, r_in, r_out] as the weight
  shapes require.
* **D2 Sp mask**: the reference's Sp layers do not broadcast the neighbourhood mask and
  crash; srprep applies the same mask as the plain layers.
* **D3 Sp prediction**: the reference never passes the tile centroid at prediction;
  srprep does (:mod:`srprep.models.pccnn.inference`).
* **D4 cached shapes**: the reference caches Q_in/Q_out/k_max/spatial size on the first
  call; here everything is computed per call, so one model serves any number of
  context and target points.
* **Memory**: the reference materialises (B, X, Y, Z, Q_out, taps, Q_in, C); srprep
  contracts taps × inputs with an einsum (same sum, different float order), and the
  factorised stages (k_max = 1) gather the single neighbour instead of masking Q_in.
* **Target chunks and order**: targets interact within a chunk after ``out_blocks.0``;
  the reference predicts chunks of 10 in file order (so results depend on the order and
  the count must be a multiple of 10).  srprep forms chunks from the *set* of targets
  (per shell, farthest-point order, dealt round-robin into ceil(n/10) chunks of <= 10),
  so outputs do not depend on the file order and any number of targets works.
* **Prediction pipeline** (b=0 handling, any shells, padding, per-shell context): see
  :mod:`srprep.models.pccnn.inference`.
* **xmax JSON**: values are written as Python floats (the reference's README call fails
  on numpy float32 and leaves a truncated file).

Layout: ``network`` (layers, variants, checkpoint I/O), ``qspace`` (q-coordinates,
context sampling, target chunks, tiles), ``inference`` (whole-subject prediction),
``data`` (training subjects and tiles), ``train`` (Lightning training, held-out angular
evaluation).  Pydra tasks: :mod:`srprep.tasks.pccnn`; workflows:
:mod:`srprep.pipelines.pccnn` (training) and :mod:`srprep.pipelines.angular` (prediction,
shared with the ``sh`` baseline); App adapter: :mod:`srprep.bids_app.methods.pccnn`;
training command: :mod:`srprep.bids_app.cli.train.pccnn`.
"""
from .inference import predict_files, predict_subject
from .network import (D_MAX, OFFICIAL, PCCNN, VARIANTS, PCCNNNet, coord_dim, expected_shapes,
                      expected_shapes_pccnn, expected_shapes_pccnn_bv, expected_shapes_pccnn_bv_sp,
                      expected_shapes_pccnn_sp, from_official_checkpoint, infer_variant,
                      save_official_checkpoint, variant_flags)

__all__ = ["D_MAX", "OFFICIAL", "PCCNN", "PCCNNNet", "VARIANTS", "coord_dim", "expected_shapes",
           "expected_shapes_pccnn", "expected_shapes_pccnn_bv", "expected_shapes_pccnn_bv_sp",
           "expected_shapes_pccnn_sp", "from_official_checkpoint", "infer_variant",
           "predict_files", "predict_subject", "save_official_checkpoint", "variant_flags"]
