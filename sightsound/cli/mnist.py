"""``sightsound mnist train|evaluate``: the chapter's MNIST jobs from the shell."""

from __future__ import annotations

import argparse

from .. import presets
from ..engine.optimizers import OPTIMIZERS
from ..engine.trainer import DTYPE_POLICIES
from .common import add_data_dir, add_device, add_seed


def _chapter_default(key: str) -> str:
    """``10 (conv, dense), 20 (enhanced)``: the chapter recipe's value of ``key`` for each model."""
    by_value: dict = {}
    for name, entry in presets.MNIST_MODELS.items():
        by_value.setdefault(presets.training_defaults(entry["preset"])[key], []).append(name)
    if len(by_value) == 1:
        return str(next(iter(by_value)))
    return ", ".join(f"{value} ({', '.join(names)})" for value, names in by_value.items())


def register(sub) -> None:
    mnist = sub.add_parser("mnist", help="train and evaluate the chapter's MNIST models")
    commands = mnist.add_subparsers(dest="mnist_command", metavar="ACTION", required=True)

    train = commands.add_parser("train", help="train an MNIST model (Listing 4.1, 4.3 or 4.5)",
                                description="Train on MNIST with the chapter's settings, evaluate on the 10,000 "
                                            "test images and save the model (TF.js format), history.json, "
                                            "curves.png and test-results.png into --out.")
    models = presets.MNIST_MODELS
    train.add_argument("--model", default="conv",
                       choices=[*models, *(entry["preset"] for entry in models.values())],
                       help=", ".join(f"{name} = {entry['title']}" for name, entry in models.items())
                       + " (default: conv)")
    train.add_argument("--recipe", default="chapter",
                       choices=[name for name, recipe in presets.RECIPES.items()
                                if any(entry["preset"] in recipe for entry in models.values())],
                       help="chapter = the chapter's settings (default); fast = Listing 4.1 with Adam, a "
                            "one-cycle learning rate and label smoothing on all 60,000 images: 99%% in 2-3 epochs; "
                            "fast-99 = the same for a small strided batch-normalised convnet (mnist-strided), "
                            "for 99%% in seconds; fast-99.5 = the same for a batch-normalised convnet (mnist-bn) "
                            "on images shifted by up to 2 pixels, for 99.5%% in six epochs")
    add_data_dir(train)
    train.add_argument("--epochs", type=int, default=None, help=f"default: {_chapter_default('epochs')}")
    train.add_argument("--batch-size", type=int, default=None,
                       help=f"default: {_chapter_default('batch_size')}")
    train.add_argument("--validation-split", type=float, default=None,
                       help=f"last fraction held out (default {_chapter_default('validation_split')})")
    train.add_argument("--optimizer", default=None, choices=list(OPTIMIZERS),
                       help=f"default: {_chapter_default('optimizer')}")
    train.add_argument("--learning-rate", type=float, default=None, help="default: the optimizer's TF.js default")
    add_device(train, gpu_alias=True)
    train.add_argument("--dtype-policy", default=DTYPE_POLICIES[0], choices=list(DTYPE_POLICIES),
                       help="float32 = TF.js's numerics (default); mixed_bfloat16 = layers in bfloat16, weights "
                            "float32: faster on CPUs with AVX512-BF16/AMX and on recent GPUs")
    add_seed(train)
    train.add_argument("--keep-best", action="store_true",
                       help="keep the weights of the epoch with the best validation accuracy, not the last")
    train.add_argument("--out", default=None, metavar="DIR", help="output directory (default: runs/<model>)")
    train.add_argument("--resume", default=None, metavar="DIR",
                       help="continue the run saved in DIR (its checkpoint/ is written after every epoch) "
                            "with the settings it started with; --epochs may raise the total")
    train.set_defaults(func=run_train)

    evaluate = commands.add_parser("evaluate", help="evaluate a saved model on the MNIST test set")
    evaluate.add_argument("model", metavar="DIR_OR_URL", help="a model directory, model.json path or URL")
    add_data_dir(evaluate)
    add_device(evaluate)
    evaluate.set_defaults(func=run_evaluate)


def _print_evaluation(loss: float, accuracy: float) -> None:
    print(f"\nEvaluation result:\n  Loss = {loss:.3f}; Accuracy = {accuracy:.3f}")


def run_train(args: argparse.Namespace) -> int:
    from ..training.mnist import CHECKPOINT_DIR, MnistSettings, train_mnist

    preset = presets.mnist_preset(args.model)
    if args.resume is None:
        try:  # a recipe without this model, or a setting out of range, fails before the summary
            MnistSettings.of(preset, args.recipe, epochs=args.epochs, batch_size=args.batch_size,
                             validation_split=args.validation_split)
        except ValueError as error:
            from ..errors import SightsoundError

            raise SightsoundError(f"--recipe {args.recipe}: {error}" if "recipe" in str(error)
                                  else str(error)) from error
    suffix = "" if args.recipe == "chapter" else f"-{args.recipe}"
    out = args.out or (args.resume if args.resume else f"runs/{preset.removeprefix('mnist-')}{suffix}")
    if not args.resume:
        presets.build(preset, device="cpu").summary()
    try:
        result = train_mnist(preset, data_dir=args.data_dir, epochs=args.epochs, batch_size=args.batch_size,
                             validation_split=args.validation_split, optimizer=args.optimizer,
                             learning_rate=args.learning_rate, device=args.device, seed=args.seed, out_dir=out,
                             progress=True, keep_best=args.keep_best, resume=args.resume, recipe=args.recipe,
                             dtype_policy=args.dtype_policy)
    except KeyboardInterrupt:
        print(f"\nInterrupted. The last complete epoch is saved in {out}/{CHECKPOINT_DIR}; continue with:\n"
              f"  sightsound mnist train --resume {out}")
        return 130
    _print_evaluation(result.test_loss, result.test_accuracy)
    print(f"\nTrained {result.epochs} epochs in {result.seconds:.1f} s. Wrote:")
    for path in result.files:
        print(f"  {path}")
    return 0


def run_evaluate(args: argparse.Namespace) -> int:
    from ..data import mnist
    from ..tfjs import load_layers_model

    model = load_layers_model(args.model, device=args.device)
    if model.loss is None:
        model.compile(optimizer="rmsprop", loss="categoricalCrossentropy", metrics=["accuracy"])
    data = mnist.load_mnist(args.data_dir)
    loss, accuracy = model.evaluate(mnist.to_float_images(data.test_images), mnist.one_hot(data.test_labels))
    _print_evaluation(loss, accuracy)
    return 0
