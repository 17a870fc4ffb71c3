"""Load on ``sightsound serve``: concurrent digit predictions and live audio streams on 127.0.0.1.

Starts ``sightsound serve`` in a subprocess (a free port on 127.0.0.1) with a
models folder holding Listing 4.1 (``mnist-conv``; trained for one short epoch
on real MNIST when ``$SIGHTSOUND_DATA``/``--data-dir`` has it, else random
weights, or ``--mnist-model DIR``) and a small speech model (trained here in
seconds on synthetic tones and noise, or ``--speech-model DIR``). Then
``--clients`` concurrent clients (default 50) run for ``--seconds`` (default
60), split into

* predict clients: ``POST /api/predict`` with a PNG digit (multipart, like the
  Draw page's upload), one request after another (``--think`` seconds between
  them, default 0: as fast as the server answers);
* audio clients (``--audio-clients``, default a fifth): ``/ws/audio`` sessions
  sending 16-kHz float32 PCM in 64-ms chunks at real time, each session lasting
  ``--session-seconds`` (default 15) before ``stop`` and a fresh session.

Everything is bounded: requests time out after 30 s, the run stops by itself
after ``--seconds`` plus a 30-s grace, and the server is terminated (then
killed) at the end.

Reported (Markdown table on stdout, JSON in ``benchmarks/results/server_load.json``):
requests served and errors per kind (an error is any non-200 answer, failed
connection, websocket ``error`` message or abnormal close, or a timeout;
goal: 0), p50/p99 latency per kind (predict: request to response; audio: from
sending the chunk that completes a recognition window to receiving its
``scores``; session set-up: connect to ``ready``), and the server's resident
memory (VmRSS from ``/proc/PID/status``) after start-up, after a warm-up, at
the end and sampled every 5 s (goal: flat).

    nice -n 10 python benchmarks/server_load.py                          # 50 clients, 60 s
    nice -n 10 python benchmarks/server_load.py --clients 10 --seconds 15   # a quick look
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

RESULTS = REPO / "benchmarks" / "results" / "server_load.json"
PCM_RATE = 16000
CHUNK = 1024  # samples per websocket message: 64 ms at 16 kHz
REQUEST_TIMEOUT = 30.0
GRACE = 30.0
SPEECH_WORDS = ["_background_noise_", "_unknown_", "low", "high"]


# --------------------------------------------------------------------------- models

def make_mnist_model(folder: Path, data_dir: str | None) -> str:
    """Listing 4.1 in ``folder``: one short epoch on real MNIST if available, else random weights."""
    from sightsound import paths, presets

    root = paths.data_dir(data_dir)
    if (root / "mnist").is_dir():
        from sightsound.data import mnist
        from sightsound.training.mnist import train_mnist

        data = mnist.load_mnist(root, download=False)
        result = train_mnist("conv", data=data, epochs=1, batch_size=64, validation_split=0.0, optimizer="adam",
                             learning_rate=0.002, train_limit=6000, test_limit=1000, device="cpu", seed=0)
        result.model.save(str(folder), user_defined_metadata={"preset": "mnist-conv",
                                                               "test_accuracy": result.test_accuracy})
        return f"Listing 4.1, 1 epoch on 6,000 real MNIST images (test accuracy {result.test_accuracy:.3f})"
    presets.build("mnist-conv", device="cpu").save(str(folder), user_defined_metadata={"preset": "mnist-conv"})
    return "Listing 4.1, random weights (no MNIST found)"


def tone_clip(rng, kind: int, samples: int, rate: int) -> np.ndarray:
    """One clip: 0 noise only, 1 a mid tone, 2 a low tone, 3 a high tone (with noise)."""
    t = np.arange(samples) / rate
    clip = rng.standard_normal(samples) * 10 ** rng.uniform(-3, -1.5)
    if kind:
        freq = {1: rng.uniform(700, 1200), 2: rng.uniform(200, 400), 3: rng.uniform(2500, 4000)}[kind]
        start, length = rng.uniform(0, 0.4), rng.uniform(0.3, 0.5)
        envelope = ((t >= start) & (t < start + length)).astype(float)
        clip += 0.3 * envelope * np.sin(2 * np.pi * freq * t)
    return clip.astype(np.float32)


def make_speech_model(folder: Path) -> str:
    """A small speech model (noise / unknown / low / high tones), trained in seconds on synthetic clips."""
    from sightsound import audio
    from sightsound.engine import layers as L
    from sightsound.engine.sequential import Sequential

    rng = np.random.default_rng(0)
    labels = [i % 4 for i in range(96)]
    x = np.stack([audio.spectrogram(tone_clip(rng, k, audio.CLIP_SAMPLES, audio.SAMPLE_RATE), audio.SAMPLE_RATE)
                  for k in labels])
    y = np.eye(4, dtype=np.float32)[labels]
    model = Sequential([L.average_pooling2d(input_shape=[43, 232, 1], pool_size=[2, 4]), L.flatten(),
                        L.dense(units=32, activation="relu"), L.dense(units=4, activation="softmax")], device="cpu")
    model.compile(optimizer="adam", loss="categoricalCrossentropy", metrics=["accuracy"], learning_rate=0.003)
    history = model.fit(x, y, batch_size=32, epochs=6)
    model.save(str(folder))
    (folder / "metadata.json").write_text(json.dumps({"words": SPEECH_WORDS, "frameSize": 232}))
    acc = history.to_json()["epochs"][-1].get("acc")
    return f"tiny tone model (pool + dense 32, 6 epochs on 96 synthetic clips, train accuracy {acc:.2f})"


def digit_pngs(data_dir: str | None, count: int = 20) -> list[bytes]:
    """PNG digits as a user uploads them: dark ink on white, 112x112 (MNIST test images if available)."""
    from PIL import Image, ImageDraw

    from sightsound import paths

    root = paths.data_dir(data_dir)
    images = []
    if (root / "mnist").is_dir():
        from sightsound.data import mnist

        images = list(mnist.load_mnist(root, download=False).test_images[:count])
    while len(images) < count:
        picture = Image.new("L", (28, 28), 0)
        ImageDraw.Draw(picture).line([(14, 4), (14 + len(images) % 5 - 2, 24)], fill=255, width=3)
        images.append(np.asarray(picture))
    pngs = []
    for image in images:
        buffer = io.BytesIO()
        Image.fromarray(255 - np.asarray(image, np.uint8)).resize((112, 112), Image.Resampling.BILINEAR).save(
            buffer, "PNG")
        pngs.append(buffer.getvalue())
    return pngs


# --------------------------------------------------------------------------- the server

def rss_kib(pid: int) -> dict:
    """VmRSS and VmHWM (peak) of ``pid`` in KiB, and its thread count, from /proc/PID/status."""
    found = {}
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(("VmRSS:", "VmHWM:", "Threads:")):
                key, value = line.split(":", 1)
                found[key] = int(value.split()[0])
    return found


class Server:
    """``sightsound serve --port 0`` in a subprocess; ``url`` once it answers."""

    def __init__(self, models: Path, data_dir: str | None, extra: list[str] = ()):
        command = [sys.executable, "-m", "sightsound", "serve", "--host", "127.0.0.1", "--port", "0",
                   "--models", str(models), *extra]
        if data_dir:
            command += ["--data-dir", data_dir]
        self.process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                        text=True)
        self.stderr: list[str] = []
        line = self._first_line(60)
        match = re.search(r"http://127\.0\.0\.1:\d+/", line)
        if not match:
            self.stop()
            raise SystemExit(f"sightsound serve did not start: {line!r} {''.join(self.stderr)[-2000:]}")
        self.url = match.group(0)
        threading.Thread(target=self._drain, daemon=True).start()

    def _first_line(self, timeout: float) -> str:
        found = []
        reader = threading.Thread(target=lambda: found.append(self.process.stdout.readline()), daemon=True)
        reader.start()
        reader.join(timeout)
        return found[0] if found else ""

    def _drain(self) -> None:
        for line in self.process.stderr:
            self.stderr.append(line)
            del self.stderr[:-200]

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)


# --------------------------------------------------------------------------- clients

class Stats:
    def __init__(self):
        self.latencies: dict[str, list[float]] = {"predict": [], "audio": [], "session": []}
        self.served: dict[str, int] = {"predict": 0, "audio": 0, "session": 0}
        self.errors: dict[str, int] = {"predict": 0, "audio": 0, "session": 0}
        self.error_samples: list[str] = []

    def error(self, kind: str, what: str) -> None:
        self.errors[kind] += 1
        if len(self.error_samples) < 20:
            self.error_samples.append(f"{kind}: {what}"[:300])


async def predict_client(client, url: str, pngs: list[bytes], model: str, stop_at: float, think: float,
                         stats: Stats, index: int) -> None:
    i = index
    while time.monotonic() < stop_at:
        png = pngs[i % len(pngs)]
        i += 1
        started = time.perf_counter()
        try:
            response = await client.post(url + "api/predict", files={"file": ("digit.png", png, "image/png")},
                                         data={"model": model})
            elapsed = time.perf_counter() - started
            body = response.json()
            if response.status_code == 200 and body.get("top"):
                stats.served["predict"] += 1
                stats.latencies["predict"].append(elapsed)
            elif response.status_code == 422 and body.get("no_digit"):
                stats.served["predict"] += 1  # an answer ("no digit"), not a failure
                stats.latencies["predict"].append(elapsed)
            else:
                stats.error("predict", f"HTTP {response.status_code}: {response.text[:200]}")
        except Exception as error:  # noqa: BLE001 - every failure is counted, the client goes on
            stats.error("predict", f"{type(error).__name__}: {error}")
        if think:
            await asyncio.sleep(think)


def pcm_stream(rng, seconds: float) -> np.ndarray:
    """``seconds`` of 16-kHz audio: noise with a tone burst every second or so."""
    out = [tone_clip(rng, int(rng.integers(0, 4)), PCM_RATE, PCM_RATE) for _ in range(int(np.ceil(seconds)) + 1)]
    return np.concatenate(out)


async def audio_session(url: str, model: str, seconds: float, stop_at: float, stats: Stats, rng) -> None:
    import websockets

    pcm = pcm_stream(rng, seconds)
    sent_at: list[float] = []  # wall (perf_counter) time each chunk was sent
    started = time.perf_counter()
    try:
        async with websockets.connect(url.replace("http://", "ws://") + "ws/audio", open_timeout=REQUEST_TIMEOUT,
                                      close_timeout=5, max_size=2**22) as socket:
            await socket.send(json.dumps({"model": model, "sample_rate": PCM_RATE, "threshold": 0.75}))
            ready = json.loads(await asyncio.wait_for(socket.recv(), REQUEST_TIMEOUT))
            if ready.get("type") != "ready":
                stats.error("session", f"no ready: {ready}")
                return
            stats.served["session"] += 1
            stats.latencies["session"].append(time.perf_counter() - started)

            async def receive():
                async for message in socket:
                    if isinstance(message, bytes):
                        continue
                    event = json.loads(message)
                    if event.get("type") == "scores":
                        now = time.perf_counter()
                        last_sample = int(round(event["time"] * PCM_RATE)) - 1
                        chunk = min(max(last_sample // CHUNK, 0), len(sent_at) - 1)
                        stats.served["audio"] += 1
                        if chunk >= 0:
                            stats.latencies["audio"].append(now - sent_at[chunk])
                    elif event.get("type") == "error":
                        stats.error("audio", event.get("error", "error"))

            receiver = asyncio.create_task(receive())
            t0 = time.perf_counter()
            for k, start in enumerate(range(0, int(seconds * PCM_RATE), CHUNK)):
                if time.monotonic() >= stop_at or receiver.done():
                    break
                delay = t0 + k * CHUNK / PCM_RATE - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                sent_at.append(time.perf_counter())
                await socket.send(pcm[start:start + CHUNK].tobytes())
            await socket.send("stop")
            try:
                await asyncio.wait_for(receiver, REQUEST_TIMEOUT)
            except asyncio.TimeoutError:
                stats.error("session", "the server did not close the session after 'stop'")
                receiver.cancel()
            code = socket.close_code
            if code not in (1000, None):
                stats.error("session", f"closed with code {code} {socket.close_reason!r}")
    except Exception as error:  # noqa: BLE001
        stats.error("session", f"{type(error).__name__}: {error}")


async def audio_client(url: str, model: str, session_seconds: float, stop_at: float, stats: Stats,
                       index: int) -> None:
    rng = np.random.default_rng(index)
    await asyncio.sleep(index * 0.25)  # stagger session starts
    while time.monotonic() < stop_at:
        await audio_session(url, model, min(session_seconds, stop_at - time.monotonic()), stop_at, stats, rng)


async def run_clients(url: str, args, pngs: list[bytes], server: Server) -> tuple[Stats, list]:
    import httpx

    stats = Stats()
    samples = []
    n_audio = args.audio_clients
    n_predict = args.clients - n_audio
    start = time.monotonic()
    stop_at = start + args.seconds
    limits = httpx.Limits(max_connections=n_predict + 5, max_keepalive_connections=n_predict + 5)

    async def sample_memory():
        while time.monotonic() < stop_at + GRACE:
            status = rss_kib(server.pid)
            samples.append((round(time.monotonic() - start, 1), status["VmRSS"], status["Threads"]))
            await asyncio.sleep(5)

    async with httpx.AsyncClient(timeout=REQUEST_TIMEOUT, limits=limits) as client:
        sampler = asyncio.create_task(sample_memory())
        tasks = [asyncio.create_task(predict_client(client, url, pngs, "mnist-conv", stop_at, args.think, stats, i))
                 for i in range(n_predict)]
        tasks += [asyncio.create_task(audio_client(url, "speech-tiny", args.session_seconds, stop_at, stats, i))
                  for i in range(n_audio)]
        done, pending = await asyncio.wait(tasks, timeout=args.seconds + GRACE)
        for task in pending:  # bounded: whatever still runs after the grace is cancelled and counted
            task.cancel()
            stats.error("predict" if tasks.index(task) < n_predict else "session", "still running after the grace")
        await asyncio.gather(*pending, return_exceptions=True)
        sampler.cancel()
    stats.clients = {"predict": n_predict, "audio": n_audio}
    stats.wall = time.monotonic() - start
    return stats, samples


async def warm_up(url: str, pngs: list[bytes]) -> None:
    """One prediction and one short audio session, so start-up costs are not in the figures."""
    import httpx

    async with httpx.AsyncClient(timeout=60) as client:
        response = await client.post(url + "api/predict", files={"file": ("d.png", pngs[0], "image/png")},
                                     data={"model": "mnist-conv"})
        response.raise_for_status()
    stats = Stats()
    await audio_session(url, "speech-tiny", 2.0, time.monotonic() + 30, stats, np.random.default_rng(99))
    if stats.errors["session"] or stats.errors["audio"]:
        raise SystemExit(f"warm-up audio session failed: {stats.error_samples}")


# --------------------------------------------------------------------------- report

def percentile(values: list[float], q: float) -> float | None:
    return float(np.percentile(values, q)) * 1000 if values else None


def report(stats: Stats, memory: dict, args, setup: dict) -> dict:
    kinds = {"predict": "POST /api/predict", "audio": "/ws/audio scores (window -> answer)",
             "session": "/ws/audio session set-up (connect -> ready)"}
    rows = {}
    for kind, label in kinds.items():
        values = stats.latencies[kind]
        rows[kind] = {"label": label, "served": stats.served[kind], "errors": stats.errors[kind],
                      "per_second": round(stats.served[kind] / stats.wall, 1),
                      "p50_ms": percentile(values, 50), "p99_ms": percentile(values, 99)}
    fmt = lambda v: "-" if v is None else f"{v:.0f}"  # noqa: E731
    print(f"\n{stats.clients['predict']} predict clients + {stats.clients['audio']} audio streams, "
          f"{args.seconds:g} s (ran {stats.wall:.1f} s)\n")
    print("| kind | served | per s | errors | p50 ms | p99 ms |")
    print("|---|---:|---:|---:|---:|---:|")
    for row in rows.values():
        print(f"| {row['label']} | {row['served']} | {row['per_second']} | {row['errors']} | "
              f"{fmt(row['p50_ms'])} | {fmt(row['p99_ms'])} |")
    mib = lambda kib: f"{kib / 1024:.0f} MiB"  # noqa: E731
    print(f"\nServer RSS: {mib(memory['start'])} after start-up, {mib(memory['warm'])} after warm-up, "
          f"{mib(memory['end'])} at the end (peak {mib(memory['peak'])}); "
          f"every 5 s: {', '.join(mib(v) for _, v, _ in memory['samples'])}; "
          f"threads {memory['samples'][0][2] if memory['samples'] else '-'} -> {memory['threads_end']}")
    if stats.error_samples:
        print("\nFirst errors:\n  " + "\n  ".join(stats.error_samples))
    load = os.getloadavg()
    return {"clients": args.clients, "predict_clients": stats.clients["predict"],
            "audio_clients": stats.clients["audio"], "seconds": args.seconds, "wall_seconds": round(stats.wall, 1),
            "think_seconds": args.think, "session_seconds": args.session_seconds, "results": rows,
            "errors_total": sum(stats.errors.values()), "error_samples": stats.error_samples,
            "server_rss_kib": {"start": memory["start"], "after_warm_up": memory["warm"], "end": memory["end"],
                               "peak": memory["peak"], "samples_t_rss_threads": memory["samples"]},
            "models": setup, "load_average_after": [round(v, 2) for v in load], "cpus": os.cpu_count(),
            "date": time.strftime("%Y-%m-%d %H:%M:%S")}


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=50, help="concurrent clients in all (default 50)")
    parser.add_argument("--audio-clients", type=int, default=None,
                        help="how many of them stream audio (default: a fifth)")
    parser.add_argument("--seconds", type=float, default=60.0, help="how long the clients run (default 60)")
    parser.add_argument("--think", type=float, default=0.0, help="pause between a client's predictions (s)")
    parser.add_argument("--session-seconds", type=float, default=15.0, help="length of one audio session (s)")
    parser.add_argument("--data-dir", default=None, help="dataset root with mnist/ (default $SIGHTSOUND_DATA)")
    parser.add_argument("--mnist-model", default=None, metavar="DIR", help="use this Listing 4.1 model")
    parser.add_argument("--speech-model", default=None, metavar="DIR",
                        help="use this speech model (a folder with model.json, weights and metadata.json)")
    parser.add_argument("--serve-args", default="", metavar="'ARGS'",
                        help="extra options for sightsound serve, e.g. '--predict-workers 40 --malloc-arenas 0' "
                             "(the settings before the prediction pool and the arena cap)")
    parser.add_argument("--json", default=str(RESULTS), help=f"where to write the figures (default {RESULTS})")
    args = parser.parse_args(argv)
    if not 1 <= args.clients <= 1000 or args.seconds <= 0 or args.seconds > 3600:
        parser.error("--clients must be 1..1000 and --seconds 0..3600")
    if args.audio_clients is None:
        args.audio_clients = args.clients // 5
    return args


def set_up_models(args, models: Path) -> dict:
    """The server's models folder (``mnist-conv`` and ``speech-tiny``, copied or made here); returns how each was
    made."""
    models.mkdir()
    setup = {}
    if args.mnist_model:
        shutil.copytree(args.mnist_model, models / "mnist-conv")
        setup["mnist"] = f"from {args.mnist_model}"
    else:
        setup["mnist"] = make_mnist_model(models / "mnist-conv", args.data_dir)
    if args.speech_model:
        shutil.copytree(args.speech_model, models / "speech-tiny")
        setup["speech"] = f"from {args.speech_model}"
    else:
        setup["speech"] = make_speech_model(models / "speech-tiny")
    print(f"models: {setup['mnist']}; {setup['speech']}", flush=True)
    return setup


def start_server(models: Path, args) -> Server:
    # room for every audio client, twice: a client's next session may open while the server is still
    # stopping the recognizer of its last one
    sessions = ["--max-audio-sessions", str(max(1, 2 * args.audio_clients))]
    server = Server(models, args.data_dir, [*sessions, *shlex.split(args.serve_args)])
    print(f"server {server.url} (pid {server.pid})", flush=True)
    return server


def measure_load(server: Server, args, pngs: list[bytes]) -> tuple[Stats, dict]:
    """Warm-up, then the clients' run; the clients' figures and the server's memory (KiB) along the way."""
    time.sleep(1.0)
    memory = {"start": rss_kib(server.pid)["VmRSS"]}
    asyncio.run(warm_up(server.url, pngs))
    memory["warm"] = rss_kib(server.pid)["VmRSS"]
    stats, samples = asyncio.run(run_clients(server.url, args, pngs, server))
    time.sleep(2.0)  # let finished sessions wind down
    status = rss_kib(server.pid)
    memory.update(end=status["VmRSS"], peak=status["VmHWM"], samples=samples, threads_end=status["Threads"])
    if server.process.poll() is not None:
        stats.error("predict", f"the server exited with {server.process.returncode}")
    return stats, memory


def write_figures(figures: dict, path: str) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(figures, indent=1))
    print(f"\nJSON: {path}")  # the path as typed (a Path would print ./x.json as x.json)


def server_tracebacks(server: Server) -> list[str]:
    """The traceback lines in the server's stderr, printed with the end of that log when there are any."""
    tracebacks = [line for line in server.stderr if "Traceback" in line]
    if tracebacks:
        print(f"server logged {len(tracebacks)} tracebacks:\n{''.join(server.stderr[-40:])}")
    return tracebacks


def main(argv=None) -> int:
    args = parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="sightsound-load-"))
    server = None
    try:
        setup = set_up_models(args, workdir / "models")
        pngs = digit_pngs(args.data_dir)
        server = start_server(workdir / "models", args)
        stats, memory = measure_load(server, args, pngs)
        figures = report(stats, memory, args, setup)
        figures["serve_args"] = args.serve_args
        write_figures(figures, args.json)
        tracebacks = server_tracebacks(server)
        return 0 if figures["errors_total"] == 0 and not tracebacks else 1
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
