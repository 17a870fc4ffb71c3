"""Build the speech model that ships inside the package (``make speech-model``), from nothing, resumably.

1. Kokoro-82M's model and English voices into the cache (``python -m sightsound.data.voices``);
2. the multi-engine corpus: ``speech synth WORK/corpus --size full --engines espeak,kokoro
   --sentence-windows 1`` (45-60 minutes on 2 cores, by CPU; an interrupted build resumes);
3. the ``people`` recipe on it: ``speech train WORK/corpus WORK/model --recipe people``
   (about 45 minutes; an interrupted run continues from its last epoch);
4. its figures on the Kokoro voices the corpus holds out for testing (``benchmarks/speech_generalization.py
   --model``): the model never heard them; then on speech neither training nor the recipe's choice saw:
   other synthesisers (``benchmarks/other_engines.py``, about 6 minutes) and real people
   (``benchmarks/real_people.py``);
5. the other-speech examples that transfer learning teaches as ``_unknown_`` (``other_speech.bin``:
   windows of sentences and everyday words of the corpus's training voices);
6. model.json, weights.bin, metadata.json, other_speech.bin and MODEL_CARD.md into
   ``sightsound/speech/pretrained/``.

Run again after an interruption: every step keeps what is done. The same seed gives the same corpus
(the same clip manifest); training is deterministic on the same machine and PyTorch build.

    python scripts/build_speech_model.py [--work runs/speech-model] [--seed 0]
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from sightsound.data import voices  # noqa: E402
from sightsound.data import speech_commands as sc  # noqa: E402
from sightsound.data.augment import Augmentation  # noqa: E402
from sightsound.data.synth import SENTENCE_WORD, SIZES, build_corpus  # noqa: E402
from sightsound.fileio import write_bytes_atomic, write_text_atomic  # noqa: E402
from sightsound.speech import frontend, model_files  # noqa: E402
from sightsound.speech.dataset import Dataset, Example  # noqa: E402
from sightsound.speech.wav import read_wav  # noqa: E402
from sightsound.training.speech import SpeechSettings, train_speech  # noqa: E402

RECIPE = "people"
SENTENCE_WINDOWS = 1  #: sentences each training Kokoro speaker reads, cut into _unknown_ windows
OTHER_SPEECH = 100  #: other-speech examples shipped for transfer learning, half of them sentence windows
SHIPPED_FILES = ("model.json", "weights.bin", model_files.METADATA_JSON, model_files.OTHER_SPEECH_EXAMPLES)


def other_speech(corpus: Path, seed: int, count: int = OTHER_SPEECH) -> tuple[bytes, int]:
    """``count`` clips of the corpus's training split that are no command word (or all, if fewer), half of
    them sentence windows (as many as there are), as ``_unknown_`` examples in the package's dataset format;
    and how many are sentence windows."""
    clips = [c for c in sc.read_manifest(corpus) if c["split"] == "training" and c["word"] not in sc.TARGET_WORDS
             and c["word"] != sc.BACKGROUND_NOISE]
    rng = np.random.default_rng(seed)
    windows = [c for c in clips if c["word"] == SENTENCE_WORD]
    words = [c for c in clips if c["word"] != SENTENCE_WORD]
    chosen = [windows[i] for i in rng.permutation(len(windows))[:count // 2]]
    sentence_windows = len(chosen)
    chosen += [words[i] for i in rng.permutation(len(words))[:count - len(chosen)]]
    dataset = Dataset()
    for clip in chosen:
        samples, rate = read_wav(corpus / clip["path"])
        dataset.add_example(Example(model_files.UNKNOWN_TAG, frontend.spectrogram(samples, rate)[..., 0]))
    return dataset.serialize(), sentence_windows


def check_trained_model(model: Path, epochs: int | None, seed: int) -> None:
    """Stop if ``model`` was trained with other settings than the recipe's now: a changed recipe must not
    ship a model trained with the old one. (An augmentation option newer than the model counts as its
    default; history.json names the optimizer by its class.)"""
    as_json = lambda value: json.loads(json.dumps(value))  # noqa: E731  (tuples as lists, as history.json has them)
    wanted = as_json({**SpeechSettings.of(RECIPE, epochs=epochs).to_json(), "seed": seed})
    had = json.loads((model / "history.json").read_text()).get("settings", {})
    had = {**had, "optimizer": str(had.get("optimizer", "")).lower(),
           "augmentation": {**as_json(dataclasses.asdict(Augmentation())), **(had.get("augmentation") or {})}}
    changed = sorted(k for k in wanted if had.get(k) != wanted[k])
    if changed:
        raise SystemExit(f"{model} was trained with other settings than the {RECIPE!r} recipe's now "
                         f"({', '.join(changed)} differ); remove that folder to train it again")


def benchmark_figures(script: str, model: Path, work: Path, *options: str) -> dict:
    """What ``benchmarks/SCRIPT.py --model MODEL`` measures, as JSON (kept per weights file, so that a
    retrained model is measured again and an interrupted build does not measure twice)."""
    digest = hashlib.sha256((model / "weights.bin").read_bytes()).hexdigest()[:12]
    out = work / f"{script}-{digest}.json"
    if not out.is_file():
        subprocess.run([sys.executable, str(ROOT / "benchmarks" / f"{script}.py"), "--model", str(model),
                        "--work", str(work / script), *options, "--json", str(out)], check=True)
    return json.loads(out.read_text())


def held_out_figures(corpus: Path, model: Path, work: Path, seed: int) -> dict:
    """The generalisation benchmark's figures for ``model`` on the corpus's held-out Kokoro voices."""
    figures = benchmark_figures("speech_generalization", model, work, "--corpus", str(corpus), "--seed", str(seed))
    return figures["folds"]["kokoro-speakers"]


def alarms(count: int) -> str:
    return f"{count} false alarm{'s' * (count != 1)}"


def independent_figures(model: Path, work: Path) -> str:
    """The card's lines on speech from sources that neither training nor the recipe's choice saw: other
    synthesisers (flite, Festival) and real people."""
    engines = benchmark_figures("other_engines", model, work)
    people = benchmark_figures("real_people", model, work)["totals"]
    lines = []
    for engine, figures in engines["engines"].items():
        clips, stream, sentences = figures["clips"]["all"], figures["stream"], figures["sentences"]
        lines.append(f"- {figures['description']}: {clips['command_accuracy']:.1%} of "
                     f"{clips['command_words']} command words right, {clips['unknown_quiet']:.1%} of other "
                     f"speech answered _unknown_/noise; streaming precision {stream['precision']:.3f}, recall "
                     f"{stream['recall']:.3f}; {alarms(sentences['false_alarms'])} in "
                     f"{sentences['minutes']} min of sentences (`python benchmarks/other_engines.py`).")
    lines.append(f"- Real people (`python benchmarks/real_people.py`: 3 speakers in pocketsphinx's test "
                 f"recordings, {people['minutes']} min): {people['right']} of {people['command_words']} command "
                 f"words caught, precision {people['precision']:.2f}, {alarms(people['false_alarms'])}. "
                 f"Too few to rank models; they show direction only.")
    return "\n".join(lines)


def model_card(corpus: Path, model: Path, figures: dict, independent: str, seed: int,
               other: tuple[int, int]) -> str:
    from sightsound.tfjs import load_layers_model

    params = load_layers_model(str(model), device="cpu").count_params()
    synth = json.loads((corpus / "synth.json").read_text())
    history = json.loads((model / "history.json").read_text())
    clips, stream, sentences = figures["clips"], figures["stream"], figures["sentences"]
    splits = synth.get("kokoro", {}).get("voice_splits", {})
    held = sorted(v for v, s in splits.items() if s == "testing")
    rows = "\n".join(f"| {k} | {v['command_accuracy']:.3f} ({v['command_words']}) | "
                     f"{v['unknown_quiet']:.3f} ({v['non_command']}) |" for k, v in clips.items())
    weights = (model / "weights.bin").stat().st_size
    count = synth["clips_per_word"].get(SENTENCE_WORD, 0)
    windows = f", and {count} one-second windows of sentences read by the training Kokoro speakers" if count else ""
    settings = history["settings"]
    snr = settings["augmentation"]["snr_db"]
    manifest = hashlib.sha256((corpus / sc.MANIFEST).read_bytes()).hexdigest()
    return f"""# The shipped speech model

`sightsound.speech.create("BROWSER_FFT")`, `sightsound speech recognize|listen` and the web app's
Speech page use this model unless told otherwise. It is a TF.js Layers model (float32 weights,
{weights / 1e6:.2f} MB; the `{history['settings']['model']}` convnet of `sightsound.presets`, {params:,} parameters;
input `[43, 232, 1]`, the browser-FFT spectrogram) that `tf.loadLayersModel` and the speech-commands
package's `create('BROWSER_FFT', undefined, modelURL, metadataURL)` load.

- **Words** (20 classes, in output order): {', '.join(json.loads((model / 'metadata.json').read_text())['words'])}.
- **Data**: a synthetic corpus in the Speech Commands layout, `speech synth --size {synth['size']} --engines
  espeak,kokoro{f' --sentence-windows {SENTENCE_WINDOWS}' if count else ''} --seed {seed}`:
  {sum(synth['clips_per_word'].values())} one-second clips from espeak-ng
  voices and Kokoro-82M's English voices (blends and speeds), with noise floors; `_unknown_` from
  Speech Commands' auxiliary words, other everyday words and short phrases{windows}.
  Its clip list (`{sc.MANIFEST}`) has SHA-256 `{manifest}`: the same command builds the same one.
- **Recipe**: `speech train --recipe {RECIPE} --seed {seed}` ({settings['epochs']} epochs,
  {settings['optimizer']}, batch {settings['batch_size']}): each epoch hears
  {', '.join(f'every {e} clip {n} times' for e, n in (settings.get('engine_repeats') or {}).items()) or 'every clip once'};
  noise at {snr[0]:g} to {snr[1]:g} dB, other tempos, vocal tracts, rooms and microphones, SpecAugment masks, cut
  words labelled `_unknown_`.
  Trained in {history['seconds'] / 60:.0f} min on this machine.
- **Other speech for transfer learning**: `{model_files.OTHER_SPEECH_EXAMPLES}` beside the model holds
  {other[0]} one-second clips of the corpus's training voices that are no command word ({other[1]} windows of
  sentences, the rest everyday words and phrases), labelled `_unknown_`: `speech transfer` and the Teach
  words page teach them to every new head, so that it stays quiet on ordinary speech
  (`speech.other_speech_examples()`; `benchmarks/transfer.py` measures it).
- **Built by** `make speech-model` (`scripts/build_speech_model.py`).

## Held-out figures

The corpus keeps 3 Kokoro voices for testing ({', '.join(held)}) and this model never heard them
(nor any blend of them). `python benchmarks/speech_generalization.py --corpus CORPUS --model
sightsound/speech/pretrained`:

| group | command words right (n) | non-command answered _unknown_/noise (n) |
|---|---:|---:|
{rows}

Streaming (`listen`, threshold {figures['threshold']}, overlap 0.5) over {stream['audio_seconds']} s of
long recordings of those voices with noise and non-command words between the command words:
precision {stream['precision']:.3f}, recall {stream['recall']:.3f}. Ordinary sentences read by those
voices (no command word): {sentences['false_alarms']} false alarms in {sentences['minutes']} min.

## Speech it was never tuned on

Neither its training nor the choice of its recipe used these:

{independent}

## Known limits

- Trained only on synthetic voices, and measured on only three real speakers (above); expect lower
  accuracy on real microphones, accents and children's voices than on the held-out synthetic voices.
- One-second windows: words longer than that, and commands said inside fast continuous speech, are
  harder; ordinary speech with homophones of command words ("to", "for", "know", "write") triggers them.
- English command words only.
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], epilog=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", default=str(ROOT / "runs" / "speech-model"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--size", default="full", help="corpus size (default full; small: a trial run)")
    parser.add_argument("--epochs", type=int, default=None, help="training epochs (default: the recipe's)")
    parser.add_argument("--no-install", action="store_true", help="build, but do not copy into the package")
    args = parser.parse_args()
    work = Path(args.work).resolve()
    corpus, model = work / "corpus", work / "model"
    if voices.main([]) != 0:
        return 1
    if not (corpus / "synth.json").is_file():
        size = dataclasses.replace(SIZES[args.size], sentences_per_speaker=SENTENCE_WINDOWS)
        build_corpus(corpus, size=size, seed=args.seed, workers=args.workers, engines="espeak,kokoro")
    if (model / "history.json").is_file():
        check_trained_model(model, args.epochs, args.seed)
    else:
        train_speech(corpus, model, recipe=RECIPE, seed=args.seed, progress=True, device=args.device,
                     workers=args.workers, epochs=args.epochs)
    figures = held_out_figures(corpus, model, work, args.seed)
    examples, sentence_windows = other_speech(corpus, args.seed)
    write_bytes_atomic(model / model_files.OTHER_SPEECH_EXAMPLES, examples)
    card = model_card(corpus, model, figures, independent_figures(model, work), args.seed,
                      (len(Dataset.from_bytes(examples).examples), sentence_windows))
    write_text_atomic(model / "MODEL_CARD.md", card)
    if not args.no_install:
        target = model_files.pretrained_model_dir()
        target.mkdir(parents=True, exist_ok=True)
        for name in SHIPPED_FILES:
            write_bytes_atomic(target / name, (model / name).read_bytes())
        write_text_atomic(target / "MODEL_CARD.md", card)
        print(f"installed into {target}")
    print(card)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
