"""Raw Cartesian k-space readers: fastMRI-style HDF5 and ISMRMRD files.

Both return a :class:`RawKSpace`: k-space (slices, coils, readout, phase-encode) complex64,
the ISMRMRD XML header when present, and the voxel size implied by the encoded field of
view. Phase encoding is the last axis (fastMRI's layout), which is where undersampling
masks act."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import InputError

__all__ = ["RawKSpace", "read_kspace", "read_fastmri_h5", "read_ismrmrd", "crop_readout",
           "acquired_lines", "header_geometry", "infer_suffix"]


@dataclass
class RawKSpace:
    kspace: np.ndarray                       #: (slices, coils, readout, phase) complex64
    source: str
    header: str | None = None                #: ISMRMRD XML header
    voxel_size: tuple = (1.0, 1.0, 1.0)      #: mm (readout, phase, slice) of the recon grid
    recon_matrix: tuple | None = None        #: (readout, phase) of the recon space
    extra: dict = field(default_factory=dict)


def header_geometry(xml: str | None) -> tuple[tuple, tuple | None]:
    """Voxel size (mm) and recon matrix from an ISMRMRD header (defaults when absent)."""
    if not xml:
        return (1.0, 1.0, 1.0), None
    try:
        import ismrmrd.xsd

        hdr = ismrmrd.xsd.CreateFromDocument(xml)
        enc = hdr.encoding[0]
        rs = enc.reconSpace
        m, fov = rs.matrixSize, rs.fieldOfView_mm
        vox = (fov.x / m.x, fov.y / m.y, fov.z / max(1, m.z))
        return tuple(float(v) for v in vox), (int(m.x), int(m.y))
    except Exception:                     # a malformed header: keep the data, default geometry
        return (1.0, 1.0, 1.0), None


def read_fastmri_h5(path: str | Path) -> RawKSpace:
    """fastMRI HDF5: ``kspace`` (slices, coils, ro, pe) or single-coil (slices, ro, pe),
    ``ismrmrd_header`` dataset; the ``mask`` of the challenge's test files is honoured."""
    import h5py

    path = Path(path)
    try:
        with h5py.File(path, "r") as f:
            if "kspace" not in f:
                raise InputError(f"{path.name}: no 'kspace' dataset (not a fastMRI file)")
            ks = np.asarray(f["kspace"][()])
            xml = f["ismrmrd_header"][()] if "ismrmrd_header" in f else None
            mask = np.asarray(f["mask"][()]).astype(bool) if "mask" in f else None
            attrs = {k: (v.item() if hasattr(v, "item") else v) for k, v in f.attrs.items()}
    except OSError as exc:
        raise InputError(f"{path.name}: not a readable HDF5 file ({exc})") from exc
    if isinstance(xml, bytes):
        xml = xml.decode("utf-8", "replace")
    if not np.iscomplexobj(ks):
        raise InputError(f"{path.name}: k-space is not complex ({ks.dtype})")
    if ks.ndim == 3:
        ks = ks[:, None]
    if ks.ndim != 4:
        raise InputError(f"{path.name}: k-space must be (slices, [coils,] readout, phase), got {ks.shape}")
    if mask is not None and mask.shape == (ks.shape[-1],):
        ks = ks * mask
    vox, matrix = header_geometry(xml)
    return RawKSpace(ks.astype(np.complex64), str(path), xml, vox, matrix,
                     {"attrs": {k: str(v) for k, v in attrs.items()}})


def read_ismrmrd(path: str | Path) -> RawKSpace:
    """ISMRMRD HDF5 (``/dataset``): imaging acquisitions placed by (slice, encode step 1);
    noise, calibration-only and navigator readouts are skipped; averages are summed."""
    import ismrmrd

    path = Path(path)
    try:
        dset = ismrmrd.Dataset(str(path), "dataset", create_if_needed=False)
    except Exception as exc:
        raise InputError(f"{path.name}: not an ISMRMRD dataset ({type(exc).__name__}: {exc})") from exc
    try:
        xml = dset.read_xml_header()
        xml = xml.decode("utf-8", "replace") if isinstance(xml, bytes) else xml
        import ismrmrd.xsd

        hdr = ismrmrd.xsd.CreateFromDocument(xml)
        enc = hdr.encoding[0]
        n_pe = int(enc.encodedSpace.matrixSize.y)
        n = dset.number_of_acquisitions()
        skip = (ismrmrd.ACQ_IS_NOISE_MEASUREMENT, ismrmrd.ACQ_IS_NAVIGATION_DATA,
                ismrmrd.ACQ_IS_PHASECORR_DATA, ismrmrd.ACQ_IS_PARALLEL_CALIBRATION)
        acqs = []
        for i in range(n):
            a = dset.read_acquisition(i)
            if any(a.is_flag_set(f) for f in skip):
                continue
            acqs.append(a)
        if not acqs:
            raise InputError(f"{path.name}: no imaging acquisitions")
        n_slices = max(a.idx.slice for a in acqs) + 1
        coils, n_ro = acqs[0].data.shape
        ks = np.zeros((n_slices, coils, n_ro, n_pe), dtype=np.complex64)
        for a in acqs:
            pe = a.idx.kspace_encode_step_1
            if pe >= n_pe:
                raise InputError(f"{path.name}: encode step {pe} outside the {n_pe}-line matrix")
            ks[a.idx.slice, :, :, pe] += a.data
    finally:
        dset.close()
    vox, matrix = header_geometry(xml)
    return RawKSpace(ks, str(path), xml, vox, matrix)


def read_kspace(path: str | Path) -> RawKSpace:
    """Dispatch on content: an ISMRMRD ``/dataset`` group, else a fastMRI ``kspace``."""
    import h5py

    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    try:
        with h5py.File(path, "r") as f:
            is_ismrmrd = "dataset" in f and "kspace" not in f
    except OSError as exc:
        raise InputError(f"{path.name}: not an HDF5 file ({exc})") from exc
    raw = read_ismrmrd(path) if is_ismrmrd else read_fastmri_h5(path)
    if not np.isfinite(raw.kspace).all():
        raise InputError(f"{path.name}: k-space contains NaN or infinite values")
    if not np.abs(raw.kspace).any():
        raise InputError(f"{path.name}: k-space is all zero")
    return raw


def crop_readout(kspace: np.ndarray, size: int) -> np.ndarray:
    """Crop the (oversampled) readout axis to ``size`` in image space, as the reference does
    (640 -> 320 for fastMRI brain), and return k-space of the cropped grid."""
    from .kspace import fft2c, ifft2c

    n = kspace.shape[-2]
    if size >= n:
        return kspace
    img = ifft2c(kspace)
    lo = (n - size) // 2
    return fft2c(img[..., lo:lo + size, :]).astype(np.complex64)


def acquired_lines(kspace: np.ndarray) -> np.ndarray:
    """Phase-encode lines holding data in any slice/coil/readout sample."""
    return np.abs(kspace).reshape(-1, kspace.shape[-1]).max(0) > 0


_SUFFIXES = [(r"FLAIR", "FLAIR"), (r"T1", "T1w"), (r"T2", "T2w"), (r"PD", "PDw")]


def infer_suffix(name: str, header: str | None = None) -> str | None:
    """BIDS suffix from a fastMRI-style file name (``file_brain_AXT2_...``) or the
    header's protocol name; None when unknown."""
    text = name.upper()
    if header:
        m = re.search(r"<protocolName>([^<]*)</protocolName>", header)
        if m:
            text = m.group(1).upper() + " " + text
    for pattern, suffix in _SUFFIXES:
        if re.search(pattern, text):
            return suffix
    return None
