import json

import pytest

from sightsound.cli import main
from sightsound.engine.sequential import Sequential
from sightsound.training import experiments


def test_variant_parameter_counts():
    one_block = Sequential(experiments._conv_one_block(), device="cpu")
    assert one_block.count_params() == 173930
    assert Sequential(experiments._conv_no_hidden_dense(), device="cpu").count_params() == 4800 + 8010
    no_dropout = Sequential(experiments._enhanced_no_dropout(), device="cpu")
    assert no_dropout.count_params() == 594922
    assert not any(layer.class_name == "Dropout" for layer in no_dropout.layers)


def test_answer_is_derived_from_numbers():
    a = experiments.VariantResult("A", 100, [1.0], [0.99], [0.97], [0.96], [[0.97]])
    b = experiments.VariantResult("B", 200, [1.0], [0.95], [0.95], [0.98], [[0.95]])
    text = experiments.answer("conv-blocks", [a, b])
    assert "B (200 params) scores 2.00 points higher" in text
    assert "most overfitting, is A (+2.00 points)" in text


def test_cli_runs_one_experiment_on_a_subset(tmp_path, real_mnist, capsys):
    code = main(["experiment", "dense-layers", "--epochs", "1", "--repeats", "1", "--train-limit", "3000",
                 "--test-limit", "1000", "--out", str(tmp_path), "--device", "cpu"])
    assert code == 0
    report = json.loads((tmp_path / "dense-layers" / "report.json").read_text())
    assert [v["params"] for v in report["variants"]] == [56714, 12810]
    for v in report["variants"]:
        assert 0.5 < v["test_acc"]["mean"] <= 1.0
        assert v["gap"]["mean"] == pytest.approx(v["train_acc"]["mean"] - v["val_acc"]["mean"])
    assert (tmp_path / "dense-layers" / "curves.png").stat().st_size > 1000
    out = capsys.readouterr().out
    assert "| with dense(64) (Listing 4.1) | 56,714 |" in out and "**Answer.**" in out


def test_unknown_experiment_is_rejected():
    with pytest.raises(ValueError, match="unknown experiment"):
        experiments.run("bogus")
