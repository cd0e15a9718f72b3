"""Method-independent MRI numerics, free of Pydra and of any method's design.

The rule (also in the README's layout section): a module belongs here when it makes no
choice specific to one method -- I/O, geometry, resampling, registration, masks, noise,
metrics, degradation models, k-space operators and the classical reconstructions
(zero-filled, SENSE-l1), gradient tables and target schemes -- or when a baseline, the
App or two or more methods use it.  Code that encodes one method's design (UniRes' grid
rule, PCCNN's q-space tiling, BABY-AI's training pairs) lives in
``srprep.models.<method>``, even when it is numerics.  Nothing here imports from
``models``, ``tasks``, ``pipelines`` or ``bids_app``.
"""
