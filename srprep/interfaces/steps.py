"""nipype ``SimpleInterface`` adapters, one per core step."""
from __future__ import annotations

import os

from nipype.interfaces.base import (BaseInterfaceInputSpec, File, InputMultiObject,
                                    SimpleInterface, TraitedSpec, traits)


def _out(runtime, name: str) -> str:
    return os.path.join(runtime.cwd, name)


class _ResliceInputSpec(BaseInterfaceInputSpec):
    in_file = File(exists=True, mandatory=True, desc="3-D image or 4-D series")
    voxel_size = traits.List(traits.Float, minlen=1, maxlen=3, mandatory=True, desc="mm")
    interpolation = traits.Enum("linear", "cubic", usedefault=True)


class _ResliceOutputSpec(TraitedSpec):
    out_file = File(exists=True, desc="resliced image (input's axis order, dtype, scale)")


class Reslice(SimpleInterface):
    """Reslice to a voxel size over the image's own field of view."""

    input_spec = _ResliceInputSpec
    output_spec = _ResliceOutputSpec

    def _run_interface(self, runtime):
        from srprep.core.resample import reslice_file

        out = _out(runtime, "resliced.nii.gz")
        vs = self.inputs.voxel_size
        reslice_file(self.inputs.in_file, out, vs if len(vs) == 3 else vs[0],
                     order=self.inputs.interpolation)
        self._results["out_file"] = out
        return runtime


class _RegisterInputSpec(BaseInterfaceInputSpec):
    moving = File(exists=True, mandatory=True)
    fixed = File(exists=True, mandatory=True)
    transform = traits.Enum("rigid", "affine", usedefault=True)
    fast = traits.Bool(False, usedefault=True)


class _RegisterOutputSpec(TraitedSpec):
    transform_file = File(exists=True, desc="ANTs affine (fixed point -> moving point)")


class Register(SimpleInterface):
    """Rigid/affine registration with antspyx."""

    input_spec = _RegisterInputSpec
    output_spec = _RegisterOutputSpec

    def _run_interface(self, runtime):
        from srprep.core.register import register_files

        out = _out(runtime, "transform.mat")
        register_files(self.inputs.moving, self.inputs.fixed, out,
                       transform=self.inputs.transform, fast=self.inputs.fast)
        self._results["transform_file"] = out
        return runtime


class _ApplyInputSpec(BaseInterfaceInputSpec):
    moving = File(exists=True, mandatory=True)
    reference = File(exists=True, mandatory=True)
    transform_file = File(exists=True, mandatory=True)
    invert = traits.Bool(False, usedefault=True)
    interpolation = traits.Enum("cubic", "linear", "nearest", usedefault=True)


class ApplyTransform(SimpleInterface):
    """Resample through a transform (or its inverse: back to the native grid)."""

    input_spec = _ApplyInputSpec
    output_spec = _ResliceOutputSpec

    def _run_interface(self, runtime):
        from srprep.core.register import apply_transform_file

        out = _out(runtime, "transformed.nii.gz")
        apply_transform_file(self.inputs.moving, self.inputs.reference,
                             self.inputs.transform_file, out, invert=self.inputs.invert,
                             order=self.inputs.interpolation)
        self._results["out_file"] = out
        return runtime


class _ScaleInputSpec(BaseInterfaceInputSpec):
    in_file = File(exists=True, mandatory=True)
    lower = traits.Float(1.0, usedefault=True)
    upper = traits.Float(99.0, usedefault=True)


class _ScaleOutputSpec(TraitedSpec):
    out_file = File(exists=True)
    params = traits.Dict(desc="parameters of the inverse")


class PercentileScale(SimpleInterface):
    """Robust min-max scaling to [0, 1]."""

    input_spec = _ScaleInputSpec
    output_spec = _ScaleOutputSpec

    def _run_interface(self, runtime):
        from srprep.core.normalise import percentile_scale_file

        out = _out(runtime, "scaled.nii.gz")
        self._results["params"] = percentile_scale_file(self.inputs.in_file, out,
                                                        lower=self.inputs.lower,
                                                        upper=self.inputs.upper)
        self._results["out_file"] = out
        return runtime


class _MaskInputSpec(BaseInterfaceInputSpec):
    in_file = File(exists=True, mandatory=True)
    bval = File(exists=True, desc="b-values of a dMRI series")


class _MaskOutputSpec(TraitedSpec):
    mask = File(exists=True)
    volume_ml = traits.Float()


class BrainMask(SimpleInterface):
    """Median-Otsu brain mask."""

    input_spec = _MaskInputSpec
    output_spec = _MaskOutputSpec

    def _run_interface(self, runtime):
        from srprep.core.mask import brain_mask_file

        out = _out(runtime, "mask.nii.gz")
        bval = self.inputs.bval if self.inputs.bval else None
        self._results["volume_ml"] = brain_mask_file(self.inputs.in_file, out, bval_file=bval)
        self._results["mask"] = out
        return runtime


class _XmaxInputSpec(BaseInterfaceInputSpec):
    in_file = File(exists=True, mandatory=True)
    bval = File(exists=True, mandatory=True)
    bvec = File(exists=True, mandatory=True)
    mask = File(exists=True, mandatory=True)
    percentile = traits.Float(99.0, usedefault=True)


class _XmaxOutputSpec(TraitedSpec):
    xmax_file = File(exists=True)
    xmax = traits.Dict()


class XmaxPerShell(SimpleInterface):
    """Per-shell dMRI intensity scale (JSON)."""

    input_spec = _XmaxInputSpec
    output_spec = _XmaxOutputSpec

    def _run_interface(self, runtime):
        from srprep.core.dwi import xmax_file

        out = _out(runtime, "xmax.json")
        self._results["xmax"] = xmax_file(self.inputs.in_file, self.inputs.bval, self.inputs.bvec,
                                          self.inputs.mask, out, percentile=self.inputs.percentile)
        self._results["xmax_file"] = out
        return runtime


class _UniResInputSpec(BaseInterfaceInputSpec):
    in_files = InputMultiObject(File(exists=True), mandatory=True, desc="one session's images")
    channels = traits.List(traits.Int, desc="channel per image (default: one each)")
    voxel_size = traits.Float(1.0, usedefault=True, desc="output voxel size (mm)")
    coregister = traits.Bool(True, usedefault=True)
    options = traits.Dict(desc="further UniRes settings (reg_scale, linear, ct, crop, fov, "
                               "common_output, res_origin, ...)")
    label_files = InputMultiObject(File(exists=True), desc="label maps to carry along")
    label_hosts = traits.List(traits.Int, desc="index of each label map's host image")


class _UniResOutputSpec(TraitedSpec):
    out_files = traits.List(File(exists=True), desc="one image per channel")
    label_out_files = traits.List(File(exists=True), desc="label maps on the output grid")
    summary = traits.Dict()


class UniRes(SimpleInterface):
    """UniRes multi-contrast super-resolution of one session."""

    input_spec = _UniResInputSpec
    output_spec = _UniResOutputSpec

    def _run_interface(self, runtime):
        from srprep.models.unires.files import coregister_files, unires_files

        files = list(self.inputs.in_files)
        channels = list(self.inputs.channels) if self.inputs.channels else list(range(len(files)))
        opts = dict(self.inputs.options or {})
        opts.setdefault("voxel_size", self.inputs.voxel_size)
        labels = list(self.inputs.label_files) if self.inputs.label_files else []
        if opts.pop("res_origin", False):
            from srprep.models.unires.files import reset_origin_file

            if not opts.get("ct") or labels:
                raise ValueError("res_origin is for CT inputs (ct) without label maps")
            files = [str(reset_origin_file(f, _out(runtime, f"reset_{i:02d}.nii.gz")))
                     for i, f in enumerate(files)]
        transforms = coregister_files(files) if self.inputs.coregister and len(files) > 1 else None
        outs = [_out(runtime, f"unires_{c:02d}.nii.gz") for c in range(max(channels) + 1)]
        label_outs = [_out(runtime, f"unires_label_{i:02d}.nii.gz") for i in range(len(labels))]
        hosts = list(self.inputs.label_hosts) if self.inputs.label_hosts else [0] * len(labels)
        self._results["summary"] = unires_files(files, channels, outs, transforms,
                                                label_files=labels, label_hosts=hosts,
                                                label_out_files=label_outs, **opts)
        self._results["out_files"] = outs
        self._results["label_out_files"] = label_outs
        return runtime
