"""Generation as a service needs it: a request (sampler spec, n, seed) checked, then PNG bytes.

A generator is the decoder plus the samplers it can draw from: the prior-free specs (`normal:`,
`beta:`) work with any decoder, a `gmm:K` only when its mixture was fitted on the model's encoded
training data (evaluate does that) and saved with it. One file holds both, loadable with
`torch.load(..., weights_only=True)`: plain tensors, ints and strings.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import torch

from pipeline.core.model.checkpoints import save_atomically
from pipeline.core.model.samplers import (
    SPEC_FORMS,
    GaussianMixtureSampler,
    Sampler,
    draw_samples,
    needs_fit,
    parse_sampler,
)
from pipeline.core.model.vae import VAE
from pipeline.errors import InputError

MAX_IMAGES = 1024  # per request: 1,024 PNGs of 28x28 are about 0.5 MB of base64
DECODER_PREFIX = "decoder_"  # VAE.decode uses decoder_hidden and decoder_output only
MAX_SEED = 2**63 - 1


def mixture_state(sampler: GaussianMixtureSampler) -> dict[str, torch.Tensor]:
    return {"weights": sampler.weights.cpu(), "means": sampler.means.cpu(), "cholesky": sampler.cholesky.cpu()}


def save_generator(path: Path, model: VAE, mixtures: list[GaussianMixtureSampler] = ()) -> Path:
    """The decoder's weights, its sizes and the fitted mixtures by spec, in one file (written atomically)."""
    decoder = {
        name: tensor.detach().cpu().clone()
        for name, tensor in model.state_dict().items()
        if name.startswith(DECODER_PREFIX)
    }
    state = {
        "latent_size": model.latent_size,
        "hidden_size": model.hidden_size,
        "decoder": decoder,
        "mixtures": {sampler.spec: mixture_state(sampler) for sampler in mixtures},
    }
    return save_atomically(state, path)


def load_generator(path: Path | str, device: torch.device) -> tuple[VAE, dict[str, GaussianMixtureSampler]]:
    """(a VAE whose decoder is the saved one, fitted mixtures by spec); the encoder is left unused."""
    state = torch.load(path, map_location=device, weights_only=True)
    model = VAE(state["latent_size"], state["hidden_size"]).to(device)
    missing, unexpected = model.load_state_dict(state["decoder"], strict=False)
    if unexpected or any(name.startswith(DECODER_PREFIX) for name in missing):
        raise ValueError(
            f"{path}: not a generator file (decoder weights missing or unexpected: {missing or unexpected})"
        )
    mixtures = {}
    for spec, tensors in state["mixtures"].items():
        sampler = parse_sampler(spec)
        mixtures[spec] = GaussianMixtureSampler(sampler.k, **{k: t.to(device) for k, t in tensors.items()})
    return model.eval(), mixtures


def request_sampler(spec, default: str, mixtures: dict[str, GaussianMixtureSampler]) -> Sampler:
    """The sampler a request's `sampler` names (empty: the generator's default), ready to draw."""
    text = str(spec) if _given(spec) else default
    allowed = f"allowed forms: {SPEC_FORMS} (gmm:K only as fitted: {', '.join(sorted(mixtures)) or 'none'})"
    try:
        sampler = parse_sampler(text)
    except InputError as error:
        reason = str(error).split("; allowed forms:")[0]
        raise InputError(f"column 'sampler': {reason}; {allowed}") from None
    if needs_fit(sampler):
        if sampler.spec not in mixtures:
            raise InputError(
                f"column 'sampler': got {text!r}, but this generator holds no fitted mixture for it; {allowed}"
            )
        return mixtures[sampler.spec]
    return sampler


def request_count(value, total_before: int = 0) -> int:
    """A request's `n`: a whole number from 1 to MAX_IMAGES, all rows together at most MAX_IMAGES."""
    allowed = f"a whole number from 1 to {MAX_IMAGES} (at most {MAX_IMAGES} images per request)"
    if not _whole(value) or not 1 <= int(value) <= MAX_IMAGES - total_before:
        raise InputError(
            f"column 'n': got {value!r}"
            + (f" after {total_before} images in earlier rows" if total_before else "")
            + f"; allowed: {allowed}"
        )
    return int(value)


def request_seed(value) -> int:
    if not _whole(value) or not 0 <= int(value) <= MAX_SEED:
        raise InputError(f"column 'seed': got {value!r}; allowed: a whole number from 0 to {MAX_SEED}")
    return int(value)


def _given(spec) -> bool:
    """False for a missing cell (None, NaN), an empty string or the word `default`."""
    if spec is None or (isinstance(spec, float) and np.isnan(spec)):
        return False
    return str(spec).strip() not in ("", "default")


def _whole(value) -> bool:
    """An integer, or a float with no fractional part; not a bool (JSON's true is no count)."""
    if isinstance(value, (bool, np.bool_)):
        return False
    return isinstance(value, (int, np.integer)) or (
        isinstance(value, (float, np.floating)) and float(value).is_integer()
    )


def png_bytes(image: np.ndarray) -> bytes:
    """A uint8 (H, W) image as a grayscale PNG (the same array gives the same bytes)."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(image.astype(np.uint8, copy=False)).save(buffer, format="PNG", optimize=False)
    return buffer.getvalue()


def generate_pngs(model: VAE, sampler: Sampler, n: int, seed: int, device: torch.device) -> list[bytes]:
    """n decoded draws of the sampler as 28x28 PNGs, seeded: same inputs, same device, same bytes."""
    images = draw_samples(model, sampler, n, seed, device)
    pixels = (images.detach().float().cpu().clamp(0, 1) * 255).round().to(torch.uint8).reshape(-1, 28, 28).numpy()
    return [png_bytes(image) for image in pixels]
