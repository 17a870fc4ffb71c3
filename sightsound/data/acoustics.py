"""What lies between a synthesiser's clean clip and a person at a microphone, done on dB frames.

A person speaks faster or slower than a synthesiser, with a longer or
shorter vocal tract, in a room that echoes, into a microphone with its own
frequency response. Rendering each of these as audio and recomputing the
spectrogram would cost more than a training step, so each is applied where
it is cheap and nearly exact: on the cached browser-FFT frames ``[N, T, F]``
(dB, :mod:`.spectrograms`), fresh for every example of every epoch.

- :func:`stretch_time`: speaking tempo, frames resampled about the window's middle;
- :func:`warp_frequency`: vocal-tract length (formants and pitch together), the
  frequency axis scaled as in vocal tract length perturbation (Jaitly & Hinton, 2013);
- :func:`reverberate`: a room, as an exponentially decaying power tail per frequency
  band (high frequencies die out sooner), at a direct-to-reverberant ratio;
- :func:`microphone`: a microphone's or telephone's response, a smooth random dB curve
  (high-pass, low-pass, tilt and a few resonances);
- :func:`mask`: SpecAugment's time and frequency masks (Park et al., 2019), on normalised
  examples (a masked stripe takes the mean, 0).

The caller draws the random factors (numpy); :func:`microphone` and :func:`mask`
take its numpy ``rng``. Values at the silence floor stay there (zero padding is
not sound).
"""

from __future__ import annotations

import numpy as np
import torch

from ..speech import frontend

BIN_HZ = frontend.SAMPLE_RATE / frontend.FFT_SIZE  #: width of one frequency bin
FRAME_SECONDS = frontend.HOP / frontend.SAMPLE_RATE  #: time from one frame to the next
_DB_TO_LN = float(np.log(10.0) / 10.0)  #: 10^(dB/10) = exp(dB * ln(10)/10)


def _bin_hz(bins: int) -> torch.Tensor:
    """Centre frequency of each bin, the DC bin counted at half a bin (logarithms stay finite)."""
    f = torch.arange(bins, dtype=torch.float32) * BIN_HZ
    f[0] = BIN_HZ / 2
    return f


def _keep_floor(out: torch.Tensor, original: torch.Tensor) -> torch.Tensor:
    floor = original <= frontend.SILENCE_DB
    out.clamp_(min=frontend.SILENCE_DB)
    out[floor] = frontend.SILENCE_DB
    return out


def _resample_axis(x: torch.Tensor, positions: torch.Tensor, dim: int) -> torch.Tensor:
    """``x`` read at fractional ``positions`` ``[N, L]`` along ``dim`` (1 or 2), linearly interpolated."""
    size = x.shape[dim]
    pos = positions.clamp(0, size - 1)
    low = pos.floor().long().clamp_(max=size - 2)
    frac = (pos - low).unsqueeze(3 - dim)  # broadcast over the other axis
    if dim == 1:
        index = low.unsqueeze(2).expand(-1, -1, x.shape[2])
    else:
        index = low.unsqueeze(1).expand(-1, x.shape[1], -1)
    a = torch.gather(x, dim, index)
    b = torch.gather(x, dim, index + 1)
    return a + (b - a) * frac


def stretch_time(frames: torch.Tensor, factors: np.ndarray) -> torch.Tensor:
    """Each example spoken ``factors[i]`` times as fast (> 1 faster), about the window's middle.

    >>> x = torch.arange(5, dtype=torch.float32).reshape(1, 5, 1).expand(1, 5, 2).contiguous()
    >>> stretch_time(x, np.array([2.0]))[0, :, 0].tolist()
    [0.0, 0.0, 2.0, 4.0, 4.0]
    >>> stretch_time(x, np.array([0.5]))[0, :, 0].tolist()
    [1.0, 1.5, 2.0, 2.5, 3.0]
    """
    n, t = frames.shape[:2]
    centre = (t - 1) / 2
    f = torch.as_tensor(factors, dtype=torch.float32).reshape(n, 1)
    positions = centre + (torch.arange(t, dtype=torch.float32).reshape(1, t) - centre) * f
    return _keep_floor(_resample_axis(frames, positions, 1), frames)


def warp_frequency(frames: torch.Tensor, alphas: np.ndarray) -> torch.Tensor:
    """Each example's frequencies scaled by ``alphas[i]`` (> 1: a shorter vocal tract, higher formants
    and pitch); bins read beyond the top repeat the top bin."""
    n, _, bins = frames.shape
    a = torch.as_tensor(alphas, dtype=torch.float32).reshape(n, 1)
    positions = torch.arange(bins, dtype=torch.float32).reshape(1, bins) / a
    return _keep_floor(_resample_axis(frames, positions, 2), frames)


def reverberate(frames: torch.Tensor, rt60_s: np.ndarray, drr_db: np.ndarray) -> torch.Tensor:
    """A room with reverberation time ``rt60_s[i]`` (at low frequencies; 60 % of it at the top bin)
    and direct-to-reverberant ratio ``drr_db[i]``: each frame's power plus a tail that decays by
    60 dB over the reverberation time and carries 10^(-drr/10) of the direct energy.

    >>> x = torch.full((1, 6, 3), -80.0); x[0, 1] = 0.0
    >>> y = reverberate(x, np.array([0.5]), np.array([0.0]))
    >>> bool((y[0, 2:] > -80).all() and (y[0, 2:, 0].diff() < 0).all())  # a tail that dies away
    True
    """
    n, t, bins = frames.shape
    power = frames.mul(_DB_TO_LN).exp_()
    shape = 1.0 - 0.4 * torch.arange(bins, dtype=torch.float32) / max(bins - 1, 1)
    rt = torch.as_tensor(rt60_s, dtype=torch.float32).reshape(n, 1) * shape.reshape(1, bins)
    decay = torch.pow(10.0, -6.0 * FRAME_SECONDS / rt)  # power factor per frame
    share = torch.pow(10.0, -torch.as_tensor(drr_db, dtype=torch.float32) / 10.0).reshape(n, 1)
    tail = power[:, 0].clone()  # the room has rung with the background for a while already
    out = torch.empty_like(power)
    for i in range(t):
        tail = tail * decay + (1.0 - decay) * power[:, i]
        out[:, i] = power[:, i] + share * tail
    out = out.clamp_(min=1e-30).log10_().mul_(10.0)
    return _keep_floor(out, frames)


def microphone_response(bins: int, rng: np.random.Generator, count: int) -> torch.Tensor:
    """``[count, bins]`` random microphone responses in dB: a second-order high-pass at 40-400 Hz,
    a low-pass at 2.5-12 kHz, a tilt of up to 3 dB an octave about 1 kHz and three resonances or
    dips of up to 6 dB, 0.2-1 octave wide."""
    f = _bin_hz(bins).reshape(1, bins)
    octaves = torch.log2(f / 1000.0)

    def draw(low, high, log=False):
        values = np.exp(rng.uniform(np.log(low), np.log(high), count)) if log else rng.uniform(low, high, count)
        return torch.as_tensor(values, dtype=torch.float32).reshape(count, 1)

    high_pass, low_pass = draw(40, 400, log=True), draw(2500, 12000, log=True)
    response = -10.0 * torch.log10(1 + (high_pass / f) ** 4) - 10.0 * torch.log10(1 + (f / low_pass) ** 4)
    response += draw(-3, 3) * octaves
    for _ in range(3):
        centre, width, gain = draw(-3, 2.3), draw(0.2, 1.0), draw(-6, 6)
        response += gain * torch.exp(-0.5 * ((octaves - centre) / (width / 2)) ** 2)
    return response


def microphone(frames: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    """Each example heard through its own :func:`microphone_response`."""
    response = microphone_response(frames.shape[2], rng, frames.shape[0])
    return _keep_floor(frames + response.unsqueeze(1), frames)


def mask(x: torch.Tensor, rng: np.random.Generator, time_masks: int, time_width: int,
         freq_masks: int, freq_width: int) -> torch.Tensor:
    """SpecAugment: in each example ``[N, T, F]`` (normalised), ``time_masks`` stripes of 0 to
    ``time_width`` frames and ``freq_masks`` stripes of 0 to ``freq_width`` bins set to 0, in place.

    >>> x = torch.ones(4, 43, 232)
    >>> _ = mask(x, np.random.default_rng(0), 2, 5, 2, 20)
    >>> bool((x == 0).any()), bool((x.sum(dim=(1, 2)) >= 43 * 232 - 2 * 5 * 232 - 2 * 20 * 43).all())
    (True, True)
    """
    n, t, bins = x.shape
    for count, width, size, axis in ((time_masks, time_width, t, 1), (freq_masks, freq_width, bins, 2)):
        for _ in range(count):
            widths = rng.integers(0, width + 1, n)
            starts = rng.integers(0, np.maximum(size - widths, 0) + 1)
            span = torch.arange(size).reshape(1, size)
            hit = (span >= torch.as_tensor(starts).reshape(n, 1)) & \
                  (span < torch.as_tensor(starts + widths).reshape(n, 1))
            x.masked_fill_(hit.unsqueeze(3 - axis), 0.0)
    return x


__all__ = ["stretch_time", "warp_frequency", "reverberate", "microphone", "microphone_response", "mask",
           "BIN_HZ", "FRAME_SECONDS"]
