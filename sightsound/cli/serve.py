"""``sightsound serve``: the chapter's browser demos on one local server."""

from __future__ import annotations

import argparse
import socket
import sys

from .common import add_data_dir

DEFAULT_MODELS_DIR = "runs"
WS_MAX_MESSAGE_BYTES = 1 << 20  # no websocket message may exceed 1 MiB (audio chunks are far smaller)


def register(sub) -> None:
    serve = sub.add_parser("serve", help="serve the web demos (train, test results, draw, speech) locally",
                           description="Start a local web server with the chapter's demos: Train (live charts), "
                                       "Test results, Draw (canvas, upload, webcam) and Speech. Binds to "
                                       "127.0.0.1 unless --host says otherwise and prints the URL.")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1, this machine only)")
    serve.add_argument("--port", type=int, default=8000, help="port (default: 8000; 0 picks a free one)")
    serve.add_argument("--models", default=DEFAULT_MODELS_DIR, metavar="DIR",
                       help=f"folder of saved models, one sub-folder each; new runs are saved here "
                            f"(default: {DEFAULT_MODELS_DIR})")
    add_data_dir(serve)
    serve.add_argument("--assets", default=None, metavar="NODE_MODULES",
                       help="node_modules folder with chart.js (default: found in the source checkout, "
                            "or $SIGHTSOUND_NODE_MODULES)")
    serve.add_argument("--predict-workers", type=int, default=None, metavar="N",
                       help="threads that run image predictions; more requests wait in line (default: half the "
                            "CPUs, leaving the rest to audio streams and training)")
    serve.add_argument("--malloc-arenas", type=int, default=2, metavar="N",
                       help="cap glibc's malloc arenas so memory stays flat under load (default 2; 0 leaves "
                            "glibc's default)")
    serve.add_argument("--log-level", default="warning", choices=["critical", "error", "warning", "info", "debug"],
                       help="uvicorn log level (default: warning)")
    serve.set_defaults(func=run_serve)


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening-ready TCP socket on ``host:port`` (port 0: a free port chosen by the OS)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as error:
        sock.close()
        from ..errors import SightsoundError

        raise SightsoundError(f"cannot listen on {host}:{port}: {error.strerror or error}") from error
    return sock


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}/"


def run_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from ..web import create_app

    if args.predict_workers is not None and args.predict_workers < 1:
        from ..errors import SightsoundError

        raise SightsoundError(f"--predict-workers must be at least 1, got {args.predict_workers}")
    if args.malloc_arenas:
        from ..runtime import limit_malloc_arenas

        limit_malloc_arenas(args.malloc_arenas)
    app = create_app(args.models, data_dir=args.data_dir, assets_dir=args.assets,
                     predict_workers=args.predict_workers)
    sock = bind_socket(args.host, args.port)
    config = uvicorn.Config(app, log_level=args.log_level, ws_max_size=WS_MAX_MESSAGE_BYTES,
                            timeout_graceful_shutdown=5)
    server = uvicorn.Server(config)
    print(f"sightsound: serving {app.state.web.store.root} on {url_of(sock)} (Ctrl-C to stop)", flush=True)
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print("sightsound: warning: listening beyond this machine; anyone who can reach it can train and "
              "upload", file=sys.stderr, flush=True)
    server.run(sockets=[sock])
    return 0
