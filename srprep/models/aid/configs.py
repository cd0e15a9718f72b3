"""The released AID configurations and the translation of the reference's model arguments
(YAML + ``causal_model_and_diffusion_defaults``) into :class:`AIDConfig`."""
from __future__ import annotations

from srprep.core.errors import ConfigurationError

from .network import AIDConfig

#: channel multipliers the reference picks from the image size when none is given
CHANNEL_MULT = {
    512: (0.5, 1, 1, 2, 2, 4, 4),
    320: (0.5, 1, 1, 2, 2, 4, 4),
    256: (1, 1, 2, 2, 4, 4),
    128: (1, 1, 2, 3, 4),
    64: (1, 2, 3, 4),
    32: (1, 2, 2, 4),
}

#: defaults of the reference's argument parser for keys a YAML omits
DEFAULTS = dict(num_channels=128, num_res_blocks=2, num_heads=4, num_head_channels=-1,
                attention_resolutions="16,8", channel_mult="", learn_sigma=True,
                use_scale_shift_norm=True, dropout=0.0, concat_cond=True, complicated_x0=False,
                num_complicated=0, resblock_updown=False, seq_length=10, in_channels=2)

#: the released models (Hugging Face Guanxiong/MRI-Image-Priors) as reference arguments,
#: with the parameter count each must have
RELEASED = {
    "fastmri_320_cplx": (dict(image_size=320, in_channels=2, seq_length=10,
                              attention_resolutions="20,10"), 139_201_540),
    "cardiac_latent": (dict(image_size=128, latent=True, in_channels=3, seq_length=42,
                            num_channels=64, attention_resolutions="16,8,4", complicated_x0=True,
                            num_complicated=1), 26_056_582),
    "3d-abide": (dict(image_size=128, in_channels=1, seq_length=77, num_channels=64,
                      attention_resolutions="16,8,4", pos_emb=True), 26_955_010),
    "normal_fastmri_320_cplx": (dict(image_size=320, in_channels=2, causal=False,
                                     attention_resolutions="20,10"), 121_022_404),
}
ALIASES = {"aid-brain": "fastmri_320_cplx", "brain": "fastmri_320_cplx",
           "aid-cardiac": "cardiac_latent", "cardiac": "cardiac_latent",
           "aid-abide": "3d-abide", "abide": "3d-abide",
           "aid-guide": "normal_fastmri_320_cplx", "guide": "normal_fastmri_320_cplx"}
#: the VQ autoencoder of the cardiac model reduces 128^2 images to 32^2 latents
LATENT_FACTOR = 4


def released_name(name: str) -> str:
    key = ALIASES.get(name, name)
    if key not in RELEASED:
        raise ConfigurationError(f"unknown AID configuration {name!r} "
                                 f"(released: {', '.join(sorted(RELEASED))})")
    return key


def is_latent(name: str) -> bool:
    """Whether a released prior works in an autoencoder's latent space (``cardiac_latent``):
    its samples need the VQ decoder, which srprep does not implement."""
    args, _ = RELEASED.get(ALIASES.get(name, name), ({}, 0))
    return bool(args.get("latent"))


def _ints(value) -> tuple:
    if isinstance(value, str):
        return tuple(float(v) if "." in v else int(v) for v in value.replace(" ", "").split(",") if v)
    return tuple(value)


def config_from_reference(args: dict) -> AIDConfig:
    """Reference model arguments -> :class:`AIDConfig`.

    Keys as in the reference YAML/argparse (``image_size``, ``num_channels``,
    ``num_res_blocks``, ``channel_mult``, ``attention_resolutions`` (feature-map sizes),
    ``num_heads``, ``seq_length``, ``in_channels``, ``learn_sigma``,
    ``use_scale_shift_norm``, ``concat_cond``, ``complicated_x0``, ``num_complicated``,
    ``latent``, ``causal``...). ``pos_emb`` is accepted and ignored: in the reference it only
    reaches the extra blocks of ``complicated_x0`` models, so no release has position
    parameters."""
    a = {**DEFAULTS, **args}
    if a.get("use_causal_gated"):
        raise ConfigurationError("use_causal_gated models are not supported (no release uses them)")
    if a.get("resblock_updown"):
        raise ConfigurationError("resblock_updown=True is not supported (no release uses it)")
    if a.get("pos_emb") and a.get("complicated_x0"):
        raise ConfigurationError("pos_emb with complicated_x0 is not supported (no release uses it)")
    size = int(a["image_size"])
    if a.get("latent") and not a.get("vae"):
        size //= LATENT_FACTOR
    mult = _ints(a["channel_mult"]) if a["channel_mult"] not in ("", None) else None
    if mult is None:
        if size not in CHANNEL_MULT:
            raise ConfigurationError(f"no default channel_mult for image_size {size}; give one")
        mult = CHANNEL_MULT[size]
    att = _ints(a["attention_resolutions"])
    return AIDConfig(image_size=size, in_channels=int(a["in_channels"]),
                     model_channels=int(a["num_channels"]), channel_mult=tuple(mult),
                     num_res_blocks=int(a["num_res_blocks"]),
                     attention_ds=tuple(size // int(r) for r in att),
                     num_heads=int(a["num_heads"]), num_head_channels=int(a["num_head_channels"]),
                     seq_length=int(a["seq_length"]), learn_sigma=bool(a["learn_sigma"]),
                     use_scale_shift_norm=bool(a["use_scale_shift_norm"]),
                     concat_cond=bool(a["concat_cond"]),
                     complicated_x0=bool(a["complicated_x0"]),
                     num_complicated=int(a["num_complicated"]), dropout=float(a["dropout"]),
                     causal=bool(a.get("causal", True)))


def released_config(name: str, **overrides) -> AIDConfig:
    args, _ = RELEASED[released_name(name)]
    return config_from_reference({**args, **overrides})


def released_parameter_count(name: str) -> int:
    return RELEASED[released_name(name)][1]
