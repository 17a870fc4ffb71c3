"""Process-wide knobs: the CPU heap tuning that keeps training steps free of page faults."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Trains Listing 4.1 on random images at batch 320 in a fresh process and prints
# whether the heap was tuned and the minor page faults per step after warm-up.
_STEPS = textwrap.dedent("""
    import resource, numpy as np, torch
    from sightsound import presets, runtime
    torch.manual_seed(0)
    model = presets.build("mnist-conv", device="cpu")
    model.compile(optimizer="rmsprop", loss="categoricalCrossentropy", metrics=["accuracy"])
    x = np.random.default_rng(0).random((320 * 12, 28, 28, 1), dtype=np.float32)
    y = np.eye(10, dtype=np.float32)[np.arange(len(x)) % 10]
    model.fit(x, y, batch_size=320)  # warm-up: the heap grows to its working size
    model.predict(x[:1024])  # calls in a row keep the heap's memory: no trim between them
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    model.fit(x, y, batch_size=320, tune_heap=True)
    print(runtime.heap_is_tuned(), (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 12)
""")


def _run(**env_changes):
    out = subprocess.run([sys.executable, "-c", _STEPS], env=_clean_env(**env_changes), capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    tuned, faults = out.stdout.split()
    return tuned == "True", float(faults)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's heap: Linux only")
def test_training_on_the_cpu_tunes_the_heap_and_steps_do_not_page_fault():
    tuned, faults = _run()
    assert tuned
    # Untuned, steps fault their activations in page by page: 2,600-8,000 faults a step measured here.
    assert faults < 500, f"{faults:.0f} minor page faults per training step"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's heap: Linux only")
@pytest.mark.parametrize("env", [{"SIGHTSOUND_TUNE_HEAP": "0"}, {"MALLOC_TOP_PAD_": "1048576"},
                                 {"MALLOC_MMAP_THRESHOLD_": "1048576"},
                                 {"GLIBC_TUNABLES": "glibc.malloc.top_pad=1048576"},
                                 {"LD_PRELOAD": "/nonexistent/libjemalloc.so.2"}])
def test_the_users_own_heap_settings_win(env):
    tuned, _ = _run(**env)
    assert not tuned


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's heap: Linux only")
@pytest.mark.parametrize("batch", [64, 1024])
def test_tuning_first_thing_still_serves_activations_from_the_heap(batch):
    # Tuned before anything large was freed, glibc's mmap threshold would stay at 128 KiB
    # (any heap option freezes it): each 5.5 MB conv output was a fresh mmap, 2,700 faults a call;
    # at glibc's 32 MiB maximum a prediction batch's 88 MB outputs still were (21,600 a call).
    code = textwrap.dedent(f"""
        import resource, torch, torch.nn.functional as F
        from sightsound import runtime
        tuned = runtime.tune_cpu_heap()
        held = [torch.empty(30 << 20, dtype=torch.uint8) for _ in range(9)]  # the heap's spare top used up
        x, w = torch.randn({batch}, 1, 28, 28), torch.randn(32, 1, 3, 3)
        for _ in range(5):
            F.conv2d(x, w)
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        for _ in range(20):
            F.conv2d(x, w)
        print(tuned, (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 20)
    """)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MALLOC_", "GLIBC_TUNABLES", "SIGHTSOUND_TUNE"))}
    out = subprocess.run([sys.executable, "-c", code], env=dict(env, PYTHONPATH=str(ROOT)),
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    tuned, faults = out.stdout.split()
    assert tuned == "True"
    assert float(faults) < 100, f"{faults} minor page faults per convolution of batch {batch}"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's heap: Linux only")
def test_unrelated_glibc_tunables_do_not_stop_the_tuning():
    tuned, _ = _run(GLIBC_TUNABLES="glibc.malloc.perturb=0")
    assert tuned


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's heap: Linux only")
def test_the_servers_arena_cap_is_applied_on_glibc():
    code = "from sightsound import runtime; print(runtime.limit_malloc_arenas(2))"
    out = subprocess.run([sys.executable, "-c", code], env=dict(os.environ, PYTHONPATH=str(ROOT)),
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["True"]


# Resident memory after what a library user does: fit Listing 4.5 briefly, then predict 4,096 images.
_RESIDENT = textwrap.dedent("""
    import gc, time, numpy as np, torch
    from sightsound import presets, runtime
    torch.manual_seed(0)
    model = presets.build("mnist-enhanced", device="cpu")
    model.compile(optimizer="rmsprop", loss="categoricalCrossentropy", metrics=["accuracy"])
    rng = np.random.default_rng(0)
    x = rng.random((512, 28, 28, 1), dtype=np.float32)
    model.fit(x, np.eye(10, dtype=np.float32)[np.arange(512) % 10], batch_size=128)
    model.predict(rng.random((4096, 28, 28, 1), dtype=np.float32))
    gc.collect()
    time.sleep(runtime.IDLE_TRIM_SECONDS + 0.5)  # the model is idle: the tuned heap gives memory back
    rss = [int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmRSS:")][0]
    print(runtime.heap_is_tuned(), rss // 1024)
""")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's heap: Linux only")
def test_a_library_user_gets_the_memory_back_after_fit_and_predict():
    tuned, tuned_mb = _resident()
    untuned, untuned_mb = _resident(SIGHTSOUND_TUNE_HEAP="0")
    assert tuned and not untuned
    # Without giving memory back, the tuned heap kept about 230 MB more than glibc's defaults.
    assert tuned_mb - untuned_mb <= 64, f"tuned {tuned_mb} MB vs untuned {untuned_mb} MB resident"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's heap: Linux only")
def test_fit_tune_heap_false_leaves_the_heap_alone():
    code = _STEPS.replace("model.fit(x, y, batch_size=320)", "model.fit(x, y, batch_size=320, tune_heap=False)")
    code = code.replace("tune_heap=True", "tune_heap=False")
    out = subprocess.run([sys.executable, "-c", code], env=_clean_env(), capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split()[0] == "False"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's heap: Linux only")
def test_predict_alone_does_not_tune_the_heap():
    code = ("import numpy as np; from sightsound import presets, runtime\n"
            "m = presets.build('mnist-conv', device='cpu'); m.predict(np.zeros((8, 28, 28, 1), np.float32))\n"
            "print(runtime.heap_is_tuned())")
    out = subprocess.run([sys.executable, "-c", code], env=_clean_env(), capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["False"]


def test_a_refused_top_pad_after_the_threshold_still_counts_as_tuned(monkeypatch):
    from sightsound import runtime

    calls = []

    def mallopt(param, value):
        calls.append(param)
        return param == runtime._M_MMAP_THRESHOLD  # the threshold is taken, the top pad refused

    monkeypatch.setattr(runtime, "_glibc_mallopt", mallopt)
    monkeypatch.setattr(runtime, "_heap_tuned", None)
    monkeypatch.delenv("SIGHTSOUND_TUNE_HEAP", raising=False)
    for name in ("MALLOC_TOP_PAD_", "MALLOC_MMAP_THRESHOLD_", "GLIBC_TUNABLES", "LD_PRELOAD"):
        monkeypatch.delenv(name, raising=False)
    # The threshold changed, so the heap is tuned (and its memory is given back after fit), not untouched.
    assert runtime.tune_cpu_heap() is True
    assert calls == [runtime._M_MMAP_THRESHOLD, runtime._M_TOP_PAD]


def test_a_refused_threshold_leaves_the_heap_untouched(monkeypatch):
    from sightsound import runtime

    calls = []
    monkeypatch.setattr(runtime, "_glibc_mallopt", lambda param, value: calls.append(param) or False)
    monkeypatch.setattr(runtime, "_heap_tuned", None)
    monkeypatch.delenv("SIGHTSOUND_TUNE_HEAP", raising=False)
    for name in ("MALLOC_TOP_PAD_", "MALLOC_MMAP_THRESHOLD_", "GLIBC_TUNABLES", "LD_PRELOAD"):
        monkeypatch.delenv(name, raising=False)
    assert runtime.tune_cpu_heap() is False
    assert runtime._M_TOP_PAD not in calls  # a top pad alone would freeze glibc's threshold at its start


def _clean_env(**changes):
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="2")
    for key in ("MALLOC_TOP_PAD_", "MALLOC_MMAP_THRESHOLD_", "GLIBC_TUNABLES", "SIGHTSOUND_TUNE_HEAP", "LD_PRELOAD"):
        env.pop(key, None)
    env.update(changes)
    return env


def _resident(**env_changes):
    out = subprocess.run([sys.executable, "-c", _RESIDENT], env=_clean_env(**env_changes), capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    tuned, mb = out.stdout.split()
    return tuned == "True", int(mb)


@pytest.mark.parametrize("command", [["mnist", "train"], ["speech", "train", "data", "model"]])
def test_gpu_is_the_chapters_alias_of_device_cuda(command):
    from sightsound.cli import build_parser

    assert build_parser().parse_args([*command, "--gpu"]).device == "cuda"
    assert build_parser().parse_args(command).device == "auto"


@pytest.mark.parametrize("cuda_build, found", [(None, "is a CPU-only build without CUDA support"),
                                               ("12.4", "built for CUDA 12.4) finds no usable CUDA GPU")])
def test_a_missing_gpu_is_one_clear_line_before_any_work(monkeypatch, capsys, tmp_path, cuda_build, found):
    import torch

    from sightsound.cli import main

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.version, "cuda", cuda_build)
    assert main(["mnist", "train", "--gpu", "--epochs", "1", "--out", str(tmp_path / "run")]) == 2
    out, err = capsys.readouterr()
    assert err.startswith("sightsound: error: device 'cuda' was asked for, but this PyTorch (")
    assert found in err and "Traceback" not in err
    assert out == "" and not (tmp_path / "run").exists()  # nothing was built or trained


def test_unknown_devices_are_refused_by_name():
    from sightsound.errors import DeviceError
    from sightsound.runtime import resolve_device

    with pytest.raises(DeviceError, match="unknown device 'tpu'"):
        resolve_device("tpu")
    with pytest.raises(DeviceError, match="unknown device 'cuda:x'"):
        resolve_device("cuda:x")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's heap: Linux only")
@pytest.mark.parametrize("flag, tuned", [([], "True"), (["--no-heap-tuning"], "False")])
def test_the_command_line_tunes_the_heap_at_start_unless_told_not_to(flag, tuned):
    code = ("import sys; from sightsound import runtime; from sightsound.cli import main\n"
            f"main({flag!r} + ['mnist', 'evaluate', '/nonexistent/model']); print(runtime.heap_is_tuned())")
    out = subprocess.run([sys.executable, "-c", code], env=_clean_env(), capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split()[-1] == tuned


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's heap: Linux only")
def test_the_heap_environment_gives_a_plain_pytorch_process_the_tuned_heap():
    # benchmarks run plain PyTorch loops with runtime.heap_environment(): without sightsound in the process,
    # its convolutions must stop faulting their outputs in, as a tuned sightsound process does.
    from sightsound.runtime import heap_environment

    code = textwrap.dedent("""
        import resource, torch, torch.nn.functional as F
        x, w = torch.randn(1024, 1, 28, 28), torch.randn(32, 1, 3, 3)
        for _ in range(5):
            F.conv2d(x, w)
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        for _ in range(20):
            F.conv2d(x, w)
        print((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 20)
    """)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MALLOC_", "GLIBC_TUNABLES", "SIGHTSOUND_TUNE"))}
    faults = {}
    for name, extra in (("plain", {}), ("tuned", heap_environment())):
        out = subprocess.run([sys.executable, "-c", code], env=dict(env, **extra), capture_output=True, text=True,
                             timeout=120)
        assert out.returncode == 0, out.stderr
        faults[name] = float(out.stdout)
    assert faults["tuned"] < 100 < faults["plain"], faults
