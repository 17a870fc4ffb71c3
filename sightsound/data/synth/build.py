"""Building a corpus: resumable (a journal of finished clips in a hidden partial folder), in parallel,
renamed into place with its lists, noise, manifest and ``synth.json`` when every clip is there."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from dataclasses import asdict
from pathlib import Path

from ...errors import DataError
from ...fileio import publish_directory, write_text_atomic
from ..download import progress_bar
from ..speech_commands import BACKGROUND_NOISE, LISTS, MANIFEST
from .espeak import espeak_version, list_voices
from .plan import clip_settings, kokoro_voice_splits, plan_clips, plan_kokoro_speakers, plan_speakers
from .render import noise_files, render_chunk
from .spec import JOURNAL, PLAN, RATE, SIZES, ClipJob, Speaker, SynthReport, SynthSize, parse_engines


def partial_dir(out_dir: str | os.PathLike) -> Path:
    """Where an unfinished build of ``out_dir`` is kept: the hidden sibling ``.<name>.synth-partial``."""
    out = Path(out_dir).absolute()
    return out.with_name(f".{out.name}.synth-partial")


def _read_journal(temp: Path, jobs: list[ClipJob]) -> set[int]:
    """Indices of the clips the journal lists whose WAV is still there with the recorded SHA-256."""
    by_index = {j.index: j for j in jobs}
    done: set[int] = set()
    journal = temp / JOURNAL
    if not journal.is_file():
        return done
    for line in journal.read_text(encoding="utf-8").splitlines():
        try:
            entry = json.loads(line)
            index, path, digest = int(entry["index"]), entry["path"], entry["sha256"]
        except (ValueError, KeyError, TypeError):
            continue  # a line torn by a crash
        job = by_index.get(index)
        if job is None or job.relpath != path:
            continue
        try:
            if hashlib.sha256((temp / path).read_bytes()).hexdigest() == digest:
                done.add(index)
        except OSError:
            pass
    return done


def build_corpus(out_dir: str | os.PathLike, size: str | SynthSize = "small", seed: int = 0, workers: int = 2,
                 progress: bool = True, overwrite: bool = False, engines: str | tuple[str, ...] = ("espeak",),
                 max_clips: int | None = None) -> SynthReport:
    """Write the corpus into ``out_dir`` (created; it must not exist or be empty unless ``overwrite``).

    ``size`` is ``"small"``, ``"full"`` or a custom :class:`SynthSize`; ``engines`` is
    ``"espeak"``, ``"kokoro"`` or both (``"espeak,kokoro"``). The corpus is assembled in
    :func:`partial_dir` and renamed into place at the end, so an interrupted build leaves no half
    corpus at ``out_dir``; running the same build again resumes it (clips verified by their
    SHA-256 in the journal are kept). ``max_clips`` renders at most that many new clips, then
    returns a report with ``complete=False`` (the partial build stays for the next run).
    """
    spec = _size_spec(size)
    size = spec.name
    engines = _check_request(seed, engines, max_clips, spec)
    out = _target_dir(out_dir, overwrite)
    started = time.perf_counter()

    kokoro_files, kokoro_info = _kokoro_setup(spec, size) if "kokoro" in engines else (None, None)
    bases, variants = list_voices()
    speakers = plan_speakers(spec, seed, bases, variants) if "espeak" in engines else []
    speakers += plan_kokoro_speakers(spec, seed) if "kokoro" in engines else []
    jobs = plan_clips(spec, seed, speakers)
    split_of = {s.hash: s.split for s in speakers}
    plan = {"generator": "sightsound.data.synth", "size": asdict(spec), "seed": seed, "engines": list(engines),
            "jobs": hashlib.sha256(json.dumps([asdict(j) for j in jobs]).encode()).hexdigest()}

    temp = partial_dir(out)
    _open_partial(temp, plan, overwrite)
    done = _read_journal(temp, jobs)
    todo = [j for j in jobs if j.index not in done]
    if max_clips is not None:
        todo = todo[:max_clips]
    for word in sorted({j.word for j in jobs}):
        (temp / word).mkdir(exist_ok=True)
    rendered = _render_clips(todo, temp, kokoro_files, workers,
                             progress_bar(len(todo), f"synth {size} ({'+'.join(engines)})", progress, unit="clip"),
                             done)

    counts, per_split = _tally(jobs, speakers)
    if len(done) < len(jobs):  # stopped on purpose by max_clips: the partial build stays for the next run
        return SynthReport(out_dir=out, size=size, seed=seed, clips=len(done), clips_per_word=counts,
                           speakers=per_split, noise_files=[], seconds=time.perf_counter() - started,
                           engines=engines, complete=False, rendered=rendered)

    noises = _write_noise(temp, spec.noise_seconds, seed, bases, variants)
    _write_lists(temp, jobs, split_of)
    _write_synth_json(temp, {"size": size, "seed": seed, "engines": engines}, jobs, speakers, sorted(noises),
                      kokoro_info)
    _move_into_place(temp, out, overwrite)
    return SynthReport(out_dir=out, size=size, seed=seed, clips=len(jobs), clips_per_word=counts,
                       speakers=per_split, noise_files=sorted(noises), seconds=time.perf_counter() - started,
                       engines=engines, complete=True, rendered=rendered)


SPLIT_BY = {"espeak": "voice variant (validation/testing variants never appear in training)",
            "kokoro": "Kokoro voice (validation/testing voices, alone or blended, never appear in training)"}


def _size_spec(size: str | SynthSize) -> SynthSize:
    if isinstance(size, SynthSize):
        return size
    if size in SIZES:
        return SIZES[size]
    raise ValueError(f"unknown corpus size {size!r}; choose one of {', '.join(SIZES)}")


def _check_request(seed: int, engines: str | tuple[str, ...], max_clips: int | None,
                   spec: SynthSize) -> tuple[str, ...]:
    """The parsed engines, after checking ``seed`` and ``max_clips`` (ValueError when bad) and that sentence
    windows come with the engine that reads them (DataError)."""
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    engines = parse_engines(engines)
    if max_clips is not None and (isinstance(max_clips, bool) or not isinstance(max_clips, int) or max_clips < 0):
        raise ValueError(f"max_clips must be a non-negative int or None, got {max_clips!r}")
    if spec.sentences_per_speaker and "kokoro" not in engines:
        raise DataError("sentence windows are read by Kokoro speakers: add kokoro to the engines "
                        "(--engines espeak,kokoro) or leave them out")
    return engines


def _target_dir(out_dir: str | os.PathLike, overwrite: bool) -> Path:
    """``out_dir`` as an absolute path, checked to be free (or ``overwrite``), its parent created."""
    out = Path(out_dir).absolute()
    if out.exists() and not out.is_dir():
        raise DataError(f"{out} exists and is not a directory")
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise DataError(f"{out} is not empty; choose a new folder (or pass overwrite)")
    out.parent.mkdir(parents=True, exist_ok=True)
    return out


def _kokoro_setup(spec: SynthSize, size: str) -> tuple[dict, dict]:
    """The Kokoro model and voices files (for the workers) and what ``synth.json`` records of them."""
    from .. import voices as kokoro

    kokoro.require_extra()
    if spec.kokoro_speakers < 3:
        raise ValueError(f"size {size!r} has {spec.kokoro_speakers} Kokoro speakers; the kokoro engine needs 3 "
                         "or more (one per split)")
    model = kokoro.model_path()
    voices_file = kokoro.prepare_voices()
    kokoro_files = {"model": str(model), "voices": str(voices_file)}
    kokoro_info = {"model": model.name, "model_sha256": kokoro.expected_model_sha256(),
                   "model_packages": list(kokoro.MODEL_PACKAGES),
                   "voices_from": f"npm {kokoro.NPM_PACKAGE}@{kokoro.NPM_VERSION}",
                   "kokoro_onnx": importlib_version("kokoro-onnx"),
                   "onnxruntime": importlib_version("onnxruntime"), "sample_rate_in": kokoro.MODEL_RATE}
    return kokoro_files, kokoro_info


def _open_partial(temp: Path, plan: dict, overwrite: bool) -> None:
    """Keep a partial build of the same ``plan``; discard another one (with ``overwrite``) or refuse."""
    if temp.is_dir():
        try:
            same = json.loads((temp / PLAN).read_text(encoding="utf-8")) == plan
        except (OSError, ValueError):
            same = False
        if not same:
            if not overwrite:
                raise DataError(f"{temp} holds an unfinished build with another seed, size or engines; run that "
                                "build again to finish it, or pass overwrite (--force) to discard it")
            shutil.rmtree(temp)
    if not temp.is_dir():
        temp.mkdir()
        write_text_atomic(temp / PLAN, json.dumps(plan) + "\n")


def _render_clips(todo: list[ClipJob], temp: Path, kokoro_files: dict | None, workers: int, bar,
                  done: set[int]) -> int:
    """Render ``todo`` into ``temp`` (in chunks, in parallel with ``workers`` > 1), journalling each
    finished clip and adding its index to ``done``; returns how many were rendered."""
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    chunk = 8
    chunks = [(todo[i:i + chunk], str(temp), kokoro_files) for i in range(0, len(todo), chunk)]
    rendered = 0
    with open(temp / JOURNAL, "a", encoding="utf-8") as journal:
        def record(entries: list[dict]) -> None:
            nonlocal rendered
            journal.write("".join(json.dumps(e) + "\n" for e in entries))
            journal.flush()
            rendered += len(entries)
            done.update(e["index"] for e in entries)
            bar.update(len(entries))

        try:
            if workers > 1 and len(chunks) > 1:
                with ProcessPoolExecutor(max_workers=workers) as pool:
                    pending = {pool.submit(render_chunk, c) for c in chunks}
                    try:
                        while pending:
                            finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                            for future in finished:
                                record(future.result())
                    except BaseException:
                        for future in pending:
                            future.cancel()
                        raise
            else:
                for c in chunks:
                    record(render_chunk(c))
        finally:
            bar.close()
            os.fsync(journal.fileno())
    return rendered


def _write_noise(temp: Path, seconds: int, seed: int, bases: tuple[str, ...],
                 variants: tuple[str, ...]) -> dict:
    """Write the ``_background_noise_`` folder; returns the noise recordings by file name."""
    from ...audio import write_wav

    noise_dir = temp / BACKGROUND_NOISE
    noise_dir.mkdir(exist_ok=True)
    noises = noise_files(seconds, seed, bases, variants)
    for name, x in noises.items():
        write_wav(noise_dir / name, x, RATE)
    (noise_dir / "README.md").write_text(
        "Generated noise for the sightsound synthetic speech corpus (16 kHz, 16-bit):\n"
        "white, pink (1/f) and brown (1/f^2) noise, 50-Hz mains hum with harmonics,\n"
        "babble (espeak-ng voices reading prose backwards, overlapped) and a babble/hum/fan mix.\n")
    return noises


def _write_lists(temp: Path, jobs: list[ClipJob], split_of: dict[str, str]) -> None:
    """``validation_list.txt``, ``testing_list.txt`` and the manifest."""
    for split, list_name in LISTS.items():
        lines = sorted(j.relpath for j in jobs if split_of[j.relpath.split("/")[1].split("_nohash_")[0]] == split)
        (temp / list_name).write_text("".join(f"{line}\n" for line in lines))
    with open(temp / MANIFEST, "w", encoding="utf-8") as manifest_file:
        for j in jobs:
            speaker = j.relpath.split("/")[1].split("_nohash_")[0]
            manifest_file.write(json.dumps({"path": j.relpath, "word": j.word, "split": split_of[speaker],
                                            "speaker": speaker, "engine": j.engine, **clip_settings(j)}) + "\n")



def _tally(jobs: list[ClipJob], speakers: list[Speaker]) -> tuple[dict[str, int], dict[str, int]]:
    """Clips per word and speakers per split."""
    counts: dict[str, int] = {}
    for j in jobs:
        counts[j.word] = counts.get(j.word, 0) + 1
    per_split = {sp: sum(1 for s in speakers if s.split == sp) for sp in ("training", "validation", "testing")}
    return counts, per_split


def _write_synth_json(temp: Path, build: dict, jobs: list[ClipJob], speakers: list[Speaker], noise_names: list[str],
                      kokoro_info: dict | None) -> None:
    """``synth.json``: how the corpus was made (``build`` holds its size name, seed and engines)."""
    size, seed, engines = build["size"], build["seed"], build["engines"]
    counts = _tally(jobs, speakers)[0]
    manifest = {
        "generator": "sightsound.data.synth", "size": size, "seed": seed, "sample_rate": RATE,
        "engines": list(engines),
        "espeak_ng": espeak_version(), "clips": len(jobs), "clips_per_word": counts,
        "clips_per_engine": {e: sum(1 for j in jobs if j.engine == e) for e in engines},
        "split_by": "; ".join(f"{e}: {SPLIT_BY[e]}" for e in engines),
        "speakers": [asdict(s) for s in speakers],
        "noise_files": noise_names,
        "manifest": f"{MANIFEST} (one line per clip: path, word, split, speaker, engine, voice, settings)",
    }
    if kokoro_info is not None:
        manifest["kokoro"] = {**kokoro_info, "voice_splits": {
            v: sp for v, sp in kokoro_voice_splits(seed).items() if sp != "training"}}
    (temp / "synth.json").write_text(json.dumps(manifest, indent=1) + "\n")


def _move_into_place(temp: Path, out: Path, overwrite: bool) -> None:
    """Drop the journal and plan, then rename the finished build to ``out``."""
    for hidden in (JOURNAL, PLAN):
        (temp / hidden).unlink()
    publish_directory(temp, out, replace=overwrite)


def importlib_version(package: str) -> str | None:
    import importlib.metadata

    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None
