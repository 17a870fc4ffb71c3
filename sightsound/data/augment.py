"""One split's examples and their augmentation (training split only, fresh every epoch).

Augmentation works on the cached frames (:mod:`.spectrograms`): a random time
shift of up to ``shift_frames`` whole frames (23 ms each, the step the
browser's recognizer moves in), background noise from the training part of
the noise files mixed at a random SNR (powers add: ``|S|^2 + g^2 |N|^2``, the
expected power of the waveform sum) and a random gain (after z-normalisation a
gain only shows where a value sits at :data:`~sightsound.audio.SILENCE_DB`).
For voices and rooms unlike the corpus's, :mod:`.acoustics` changes the tempo,
the vocal tract, the room and the microphone, and masks stripes (SpecAugment).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import torch

from .. import audio
from . import acoustics
from .acoustics import _DB_TO_LN
from ..speech.model_files import BACKGROUND_NOISE_TAG as BACKGROUND_NOISE
from ..speech.model_files import UNKNOWN_TAG as UNKNOWN
from .spectrograms import CONTEXT_FRAMES

if TYPE_CHECKING:
    from .speech_commands import Clip


#: A word's frames: those whose power is within this many dB of its loudest frame.
ACTIVE_WITHIN_DB = 30.0
#: What an augmentation's SNR is measured over: the whole window, or the word in it.
SNR_OVER = ("window", "word")


@dataclass(frozen=True)
class Augmentation:
    """Random changes applied to every training example, fresh each epoch.

    ``shift_frames``: time shift of up to that many frames either way (at most
    :data:`CONTEXT_FRAMES`); ``noise_probability``: chance of mixing in
    background noise, at an SNR drawn from ``snr_db``, measured over the whole
    window (``snr_over="window"``) or over its word alone (``"word"``: the
    frames within :data:`ACTIVE_WITHIN_DB` of its loudest, as a listener
    hears a word against the room); ``gain_db``: range of a
    random gain. ``fragment_probability``: chance that a clip is shifted so far
    that only a ``fragment_visible`` share of its word (its frames within
    30 dB of the loudest) stays in the window, at either edge, and is labelled
    ``_unknown_``: a streaming recognizer sees such windows as the word enters
    or leaves, and a model that never saw one guesses a word from the
    fragment. ``partial_probability``: chance that a clip is shifted so that a
    ``partial_visible`` share of its word stays, keeping its label (a window
    that hears most of "seven" should say "seven", not "six").
    ``running_speech_probability``: chance that a non-command clip's window
    ends its word after ``running_speech_cut`` frames and another non-command
    clip's word follows 0 to 4 frames later, still ``_unknown_``: in running
    speech one word follows another with hardly a pause, and a model that only
    ever heard words alone in a window names a command in a sentence's syllables.
    ``placement_probability``: chance that the window is placed anywhere that
    keeps the clip's whole word inside it (uniformly over those places): a
    streaming recognizer's windows fall anywhere around a word, every 22 frames
    at the default overlap, not only where the corpus centred it. Beyond the
    cached context a window repeats the clip's first or last frame (its
    background).
    ``tempo_probability``, ``warp_probability``, ``reverb_probability``,
    ``microphone_probability``: chance of another speaking tempo (factor from
    ``tempo``), vocal-tract length (frequency factor from ``warp``), a room
    (``rt60_s``, ``drr_db``) and a microphone response (:mod:`.acoustics`).
    ``time_masks``/``freq_masks``: SpecAugment stripes of up to
    ``time_mask_frames`` frames and ``freq_mask_bins`` bins per example.
    ``Augmentation.none()`` turns everything off.
    """

    shift_frames: int = CONTEXT_FRAMES
    noise_probability: float = 0.7
    snr_db: tuple[float, float] = (3.0, 30.0)
    snr_over: str = "window"
    gain_db: tuple[float, float] = (-12.0, 12.0)
    fragment_probability: float = 0.0
    fragment_visible: tuple[float, float] = (0.05, 0.35)
    partial_probability: float = 0.0
    partial_visible: tuple[float, float] = (0.6, 1.0)
    running_speech_probability: float = 0.0
    running_speech_cut: tuple[int, int] = (8, 35)
    placement_probability: float = 0.0
    tempo_probability: float = 0.0
    tempo: tuple[float, float] = (0.85, 1.15)
    warp_probability: float = 0.0
    warp: tuple[float, float] = (0.85, 1.2)
    reverb_probability: float = 0.0
    rt60_s: tuple[float, float] = (0.15, 0.9)
    drr_db: tuple[float, float] = (-3.0, 15.0)
    microphone_probability: float = 0.0
    time_masks: int = 0
    time_mask_frames: int = 5
    freq_masks: int = 0
    freq_mask_bins: int = 20

    def __post_init__(self):
        if not 0 <= self.shift_frames <= CONTEXT_FRAMES:
            raise ValueError(f"shift_frames must be in 0..{CONTEXT_FRAMES}, got {self.shift_frames}")
        if not 0 <= self.noise_probability <= 1:
            raise ValueError(f"noise_probability must be in [0, 1], got {self.noise_probability}")
        low, high = self.snr_db
        if not (np.isfinite(low) and np.isfinite(high) and low <= high):
            raise ValueError(f"snr_db must be a finite (min, max) range in dB, got {self.snr_db}")
        if self.snr_over not in SNR_OVER:
            raise ValueError(f"snr_over must be one of {', '.join(SNR_OVER)}, got {self.snr_over!r}")
        for name in ("fragment", "partial"):
            probability, (low, high) = getattr(self, f"{name}_probability"), getattr(self, f"{name}_visible")
            if not 0 <= probability <= 1:
                raise ValueError(f"{name}_probability must be in [0, 1], got {probability}")
            if not 0 < low <= high <= 1:
                raise ValueError(f"{name}_visible must be a (min, max) share in (0, 1], got {(low, high)}")
        for name, (low, high) in (("tempo", self.tempo), ("warp", self.warp), ("rt60_s", self.rt60_s)):
            if not 0 < low <= high:
                raise ValueError(f"{name} must be a positive (min, max) range, got {(low, high)}")
        if not self.drr_db[0] <= self.drr_db[1]:
            raise ValueError(f"drr_db must be a (min, max) range in dB, got {self.drr_db}")
        low, high = self.running_speech_cut
        if not 1 <= low <= high < audio.NUM_FRAMES:
            raise ValueError(f"running_speech_cut must be a (min, max) frame range in 1..{audio.NUM_FRAMES - 1}, "
                             f"got {self.running_speech_cut}")
        for name in ("running_speech", "placement", "tempo", "warp", "reverb", "microphone"):
            if not 0 <= getattr(self, f"{name}_probability") <= 1:
                raise ValueError(f"{name}_probability must be in [0, 1], got {getattr(self, f'{name}_probability')}")
        for name in ("time_masks", "time_mask_frames", "freq_masks", "freq_mask_bins"):
            if isinstance(getattr(self, name), bool) or not isinstance(getattr(self, name), int) \
                    or getattr(self, name) < 0:
                raise ValueError(f"{name} must be an int >= 0, got {getattr(self, name)!r}")

    @classmethod
    def none(cls) -> "Augmentation":
        return cls(shift_frames=0, noise_probability=0.0, snr_db=(0.0, 0.0), gain_db=(0.0, 0.0))


def normalize_batch(x: np.ndarray) -> np.ndarray:
    """:func:`sightsound.audio.normalize` for every example of ``[N, ...]`` at once, in place (float32).

    Runs on PyTorch's threads (a single numpy pass over an epoch of speech
    examples took seconds); each example's mean and variance are taken in one
    float64 pass over it.
    """
    t = torch.from_numpy(x)
    for start in range(0, len(x), 1024):
        block = t[start:start + 1024]
        var, mean = torch.var_mean(block.double(), dim=tuple(range(1, x.ndim)), correction=0, keepdim=True)
        block.sub_(mean.float()).div_((var.sqrt() + audio.NORMALIZE_EPSILON).float())
    return x


def _float32(a: np.ndarray) -> np.ndarray:
    """float16 -> float32 with PyTorch's vectorised conversion (numpy's is several times slower)."""
    return torch.from_numpy(np.ascontiguousarray(a)).float().numpy()


def _windows(frames: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """43-frame windows from ``starts``; for ``[N, F, 232]`` clips, frames beyond either end
    repeat the clip's first or last frame (its background)."""
    idx = starts[:, None] + np.arange(audio.NUM_FRAMES)[None, :]
    if frames.ndim == 3:
        return frames[np.arange(len(starts))[:, None], np.clip(idx, 0, frames.shape[1] - 1)]
    return frames[idx]


def active_spans(frames: np.ndarray, within_db: float = ACTIVE_WITHIN_DB) -> np.ndarray:
    """``[N, 2]`` first and last+1 frame of each clip's ``[N, F, 232]`` dB frames whose total
    power is within ``within_db`` of the clip's loudest frame."""
    spans = np.empty((len(frames), 2), dtype=np.int64)
    for start in range(0, len(frames), 2048):
        power = torch.tensor(frames[start:start + 2048], dtype=torch.float32)  # a copy: the caller's frames stay
        power = power.mul_(_DB_TO_LN).exp_().sum(dim=2)
        level = power.clamp_(min=1e-30).log10_().mul_(10.0)
        on = level >= level.amax(dim=1, keepdim=True) - within_db
        spans[start:start + len(on), 0] = on.int().argmax(dim=1).numpy()
        spans[start:start + len(on), 1] = frames.shape[1] - on.flip(1).int().argmax(dim=1).numpy()
    return spans


@dataclass
class SpeechSplit:
    """The examples of one split: clips (with cached frames) plus noise windows.

    ``arrays()`` gives model-ready ``x`` ``[N, 43, 232, 1]`` float32 (z-normalised)
    and one-hot ``y`` ``[N, len(words)]``; ``labels`` holds the class ids in the
    same order (clips first, then noise windows).
    """

    name: str
    words: tuple[str, ...]
    clips: list[Clip]
    clip_frames: np.ndarray  # [N, 43 + 2*CONTEXT_FRAMES, 232] float16 dB
    noise_frames: list[np.ndarray]  # this split's part of each noise file, [F_i, 232] float16 dB
    noise_examples: int
    seed: int
    epoch_noise: list[np.ndarray] = field(default_factory=list)  # training part of noise, for mixing
    _all_noise: np.ndarray | None = field(default=None, repr=False)  # epoch_noise end to end, made on first use
    _noise_lengths: np.ndarray | None = field(default=None, repr=False)  # frames of each epoch_noise file
    _noise_offsets: np.ndarray | None = field(default=None, repr=False)  # where each starts in _all_noise
    _spans: np.ndarray | None = field(default=None, repr=False)  # active_spans(clip_frames), when needed

    @property
    def labels(self) -> np.ndarray:
        ids = {w: i for i, w in enumerate(self.words)}
        clip_ids = [ids[c.label] for c in self.clips]
        return np.array(clip_ids + [ids[BACKGROUND_NOISE]] * self.noise_examples, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.clips) + self.noise_examples

    def repeated(self, counts: np.ndarray) -> "SpeechSplit":
        """This split with clip ``i`` ``counts[i]`` times: every clip once, then a second copy of those
        counted twice or more, then a third..., in clip order; the noise examples stay."""
        counts = np.asarray(counts, dtype=np.int64)
        if counts.shape != (len(self.clips),) or (counts < 1).any():
            raise ValueError(f"counts must give every one of the {len(self.clips)} clips a count >= 1")
        keep = np.concatenate([np.flatnonzero(counts >= k) for k in range(1, int(counts.max(initial=1)) + 1)])
        return dataclasses.replace(self, clips=[self.clips[i] for i in keep], clip_frames=self.clip_frames[keep],
                                   _spans=None if self._spans is None else self._spans[keep])

    def counts(self) -> dict[str, int]:
        """Examples per class, in :attr:`words` order."""
        binc = np.bincount(self.labels, minlength=len(self.words))
        return {w: int(n) for w, n in zip(self.words, binc)}

    def arrays(self, augmentation: Augmentation | None = None, rng: np.random.Generator | None = None,
               one_hot: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """Model inputs and targets. Without ``augmentation`` the output is the same every call
        (noise windows drawn with the split's own seed)."""
        aug = augmentation or Augmentation.none()
        rng = rng if rng is not None else np.random.default_rng([self.seed, 7])
        fixed = np.random.default_rng([self.seed, 11])  # noise-window choice of unaugmented splits
        n_clips, n = len(self.clips), len(self)
        x = np.empty((n, audio.NUM_FRAMES, audio.FRAME_SIZE, 1), dtype=np.float32)
        view = x[..., 0]
        labels = self.labels
        fragments = aug.fragment_probability > 0 and UNKNOWN in self.words and n_clips > 0
        partials = aug.partial_probability > 0 and n_clips > 0
        placements = aug.placement_probability > 0 and n_clips > 0
        runs = aug.running_speech_probability > 0 and UNKNOWN in self.words and n_clips > 0
        if (fragments or partials or placements or runs) and self._spans is None:
            self._spans = active_spans(self.clip_frames)
        non_command = np.flatnonzero(labels[:n_clips] == self.words.index(UNKNOWN)) if runs else None
        block = 1024
        for start in range(0, n_clips, block):
            stop = min(start + block, n_clips)
            size = stop - start
            starts, run_on = self._window_starts(start, size, aug, rng, labels, (fragments, partials, placements),
                                                 non_command)
            frames = _float32(_windows(self.clip_frames[start:stop], starts))
            if run_on is not None:
                self._follow_with_words(frames, *run_on)
            frames = _voice_and_room(frames, rng, aug)
            if aug.noise_probability > 0 and self.epoch_noise:
                mix = rng.random(size) < aug.noise_probability
                if mix.any():
                    frames[mix] = self._mix_noise(frames[mix], rng, aug)
            if aug.gain_db != (0.0, 0.0):
                frames = _gain(frames, rng.uniform(*aug.gain_db, size))
            view[start:stop] = _microphone(frames, rng, aug)
        if self.noise_examples:
            sources = self.noise_frames
            pick_rng = rng if aug is not None and aug != Augmentation.none() else fixed
            which = pick_rng.integers(len(sources), size=self.noise_examples)
            for i, k in enumerate(which):
                src = sources[k]
                s = int(pick_rng.integers(0, len(src) - audio.NUM_FRAMES + 1))
                view[n_clips + i] = src[s:s + audio.NUM_FRAMES]
            if aug.gain_db != (0.0, 0.0):
                view[n_clips:] = _gain(view[n_clips:], rng.uniform(*aug.gain_db, self.noise_examples))
            view[n_clips:] = _microphone(view[n_clips:], rng, aug)
        normalize_batch(x)
        if aug.time_masks or aug.freq_masks:
            for start in range(0, n, 1024):
                acoustics.mask(torch.from_numpy(view[start:start + 1024]), rng, aug.time_masks, aug.time_mask_frames,
                               aug.freq_masks, aug.freq_mask_bins)
        if not one_hot:
            return x, labels
        y = np.zeros((n, len(self.words)), dtype=np.float32)
        y[np.arange(n), labels] = 1.0
        return x, y

    def _window_starts(self, start: int, size: int, aug: Augmentation, rng: np.random.Generator,
                       labels: np.ndarray, cuts: tuple[bool, bool, bool], non_command: np.ndarray | None):
        """Where the windows of clips ``start .. start + size`` begin in their cached frames: a random
        shift, or for some clips a cut word (relabelled ``_unknown_`` in ``labels`` when only a
        fragment stays) or a placement anywhere around the whole word; and, when ``non_command``
        (the ``_unknown_`` clips) is given, the running-speech windows: (rows, the frame where the
        next word begins, its clip), for :meth:`_follow_with_words`."""
        fragments, partials, placements = cuts
        shifts = rng.integers(-aug.shift_frames, aug.shift_frames + 1, size) if aug.shift_frames else np.zeros(size, int)
        starts = CONTEXT_FRAMES - shifts
        taken = np.zeros(size, dtype=bool)
        if fragments:
            cut = np.flatnonzero(rng.random(size) < aug.fragment_probability)
            starts[cut] = self._edge_starts(start + cut, aug.fragment_visible, rng)
            labels[start + cut] = self.words.index(UNKNOWN)
            taken[cut] = True
        if partials:
            cut = np.flatnonzero((rng.random(size) < aug.partial_probability) & ~taken)
            starts[cut] = self._edge_starts(start + cut, aug.partial_visible, rng)
            taken[cut] = True
        run_on = None
        if non_command is not None and non_command.size:
            is_non_command = labels[start:start + size] == self.words.index(UNKNOWN)  # fragments are taken
            rows = np.flatnonzero((rng.random(size) < aug.running_speech_probability) & ~taken & is_non_command)
            ends = rng.integers(aug.running_speech_cut[0], aug.running_speech_cut[1] + 1, rows.size)
            starts[rows] = self._spans[start + rows, 1] - ends
            taken[rows] = True
            run_on = (rows, ends + rng.integers(0, 5, rows.size), non_command[rng.integers(non_command.size,
                                                                                      size=rows.size)])
        if placements:
            cut = np.flatnonzero((rng.random(size) < aug.placement_probability) & ~taken)
            starts[cut] = self._whole_word_starts(start + cut, rng)
        return starts, run_on

    def _follow_with_words(self, frames: np.ndarray, rows: np.ndarray, at: np.ndarray, clips: np.ndarray) -> None:
        """In window ``rows[i]`` of ``frames`` (float32 dB, in place), from frame ``at[i]`` on: the
        word of clip ``clips[i]`` from its first active frame."""
        for row, begin, clip in zip(rows, at, clips):
            first = self._spans[clip, 0]
            follow = self.clip_frames[clip, first:first + audio.NUM_FRAMES - begin]
            frames[row, begin:begin + len(follow)] = follow

    def _edge_starts(self, clips: np.ndarray, visible_share: tuple[float, float],
                     rng: np.random.Generator) -> np.ndarray:
        """Window starts (in cached frames) that leave a random ``visible_share`` of each clip's word
        inside the window, the rest beyond its end or its start (at random)."""
        first, last = self._spans[clips].T
        visible = np.maximum(1, np.round(rng.uniform(*visible_share, len(clips)) * (last - first)))
        at_end = rng.random(len(clips)) < 0.5  # the word leaves through the window's end, else its start
        return np.where(at_end, first + visible - audio.NUM_FRAMES, last - visible).astype(np.int64)

    def _whole_word_starts(self, clips: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Window starts (in cached frames), uniform over those that keep each clip's whole word
        inside the window (for a word longer than the window: inside the word). A window reaches
        past the cached frames only where the clip's edge frame is background, not the word, since
        those frames repeat the edge one."""
        first, last = self._spans[clips].T
        low, high = np.minimum(first, last - audio.NUM_FRAMES), np.maximum(first, last - audio.NUM_FRAMES)
        end = self.clip_frames.shape[1] - audio.NUM_FRAMES  # the last start inside the cached frames
        low = np.where(first == 0, np.clip(low, 0, end), low)
        high = np.where(last == self.clip_frames.shape[1], np.clip(high, 0, end), high)
        low = np.minimum(low, high)
        return low + np.floor(rng.random(len(clips)) * (high - low + 1)).astype(np.int64)

    def _mix_noise(self, frames: np.ndarray, rng: np.random.Generator, aug: Augmentation) -> np.ndarray:
        size = len(frames)
        if self._all_noise is None:  # the noise files end to end, so one gather cuts every window
            self._all_noise = np.concatenate(self.epoch_noise)
            self._noise_lengths = np.array([len(src) for src in self.epoch_noise])
            self._noise_offsets = np.concatenate([[0], np.cumsum(self._noise_lengths)[:-1]])
        which = rng.integers(len(self.epoch_noise), size=size)
        starts = rng.integers(0, self._noise_lengths[which] - audio.NUM_FRAMES + 1)  # a window of each file
        noise = _float32(_windows(self._all_noise, self._noise_offsets[which] + starts))
        snr = rng.uniform(*aug.snr_db, size)
        # powers, the mix and back to dB on PyTorch's threads (numpy's single pass was 1/4 of an epoch)
        p_s = torch.from_numpy(frames).mul(_DB_TO_LN).exp_()
        p_n = torch.from_numpy(noise).mul_(_DB_TO_LN).exp_()
        e_s, e_n = _signal_energy(p_s, aug.snr_over), p_n.sum(dim=(1, 2)).double().clamp_(min=1e-30)
        scale = (e_s / e_n / torch.from_numpy(10.0 ** (snr / 10.0))).float()
        p = p_s.add_(p_n.mul_(scale[:, None, None])).clamp_(min=audio.SILENCE_AMPLITUDE ** 2)
        return p.log10_().mul_(10.0).numpy()



def _signal_energy(power: torch.Tensor, over: str) -> torch.Tensor:
    """Each ``[N, F, bins]`` window's energy: its total, or (``"word"``) F times the mean power of its word's
    frames, so that an SNR against the noise's total over the window is the word's SNR."""
    if over == "window":
        return power.sum(dim=(1, 2)).double()
    frames = power.sum(dim=2).double()
    word = frames >= frames.amax(dim=1, keepdim=True) * 10.0 ** (-ACTIVE_WITHIN_DB / 10.0)
    return (frames * word).sum(dim=1) / word.sum(dim=1) * frames.shape[1]


def _chosen(rng: np.random.Generator, probability: float, size: int) -> np.ndarray:
    return np.flatnonzero(rng.random(size) < probability) if probability > 0 else np.empty(0, dtype=np.int64)


def _voice_and_room(frames: np.ndarray, rng: np.random.Generator, aug: Augmentation) -> np.ndarray:
    """Another tempo, another vocal tract and a room, each for its share of the clips (in place)."""
    size = len(frames)
    t = torch.from_numpy(frames)
    for chosen, change in (
            (_chosen(rng, aug.tempo_probability, size), lambda x, k: acoustics.stretch_time(
                x, np.exp(rng.uniform(*np.log(aug.tempo), k)))),
            (_chosen(rng, aug.warp_probability, size), lambda x, k: acoustics.warp_frequency(
                x, np.exp(rng.uniform(*np.log(aug.warp), k)))),
            (_chosen(rng, aug.reverb_probability, size), lambda x, k: acoustics.reverberate(
                x, rng.uniform(*aug.rt60_s, k), rng.uniform(*aug.drr_db, k)))):
        if chosen.size:
            index = torch.from_numpy(chosen)
            t[index] = change(t[index], chosen.size)
    return frames


def _microphone(frames: np.ndarray, rng: np.random.Generator, aug: Augmentation) -> np.ndarray:
    chosen = _chosen(rng, aug.microphone_probability, len(frames))
    if chosen.size:
        index = torch.from_numpy(chosen)
        t = torch.from_numpy(frames)
        t[index] = acoustics.microphone(t[index], rng)
    return frames


def _gain(frames: np.ndarray, gains_db: np.ndarray) -> np.ndarray:
    """Add a gain in dB, keeping values at the silence floor there (zeros stay zeros)."""
    floor = frames <= audio.SILENCE_DB
    out = frames + gains_db.astype(np.float32).reshape(-1, *([1] * (frames.ndim - 1)))
    np.maximum(out, audio.SILENCE_DB, out=out)
    out[floor] = audio.SILENCE_DB
    return out


__all__ = ["Augmentation", "SpeechSplit", "normalize_batch", "active_spans"]
