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
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    model.fit(x, y, batch_size=320)
    faults = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 12
    print(runtime.tune_cpu_heap(), faults)
""")


def _run(**env_changes):
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="2")
    for key in ("MALLOC_TOP_PAD_", "MALLOC_MMAP_THRESHOLD_", "GLIBC_TUNABLES", "SIGHTSOUND_TUNE_HEAP", "LD_PRELOAD"):
        env.pop(key, None)
    env.update(env_changes)
    out = subprocess.run([sys.executable, "-c", _STEPS], env=env, capture_output=True, text=True, timeout=300)
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
