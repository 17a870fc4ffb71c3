"""``sightsound serve``: the chapter's browser demos on one local server."""

from __future__ import annotations

import argparse
import socket
import sys

from ..web.security import DEFAULT_MAX_AUDIO_SESSIONS, LOOPBACK_HOSTS
from .common import add_data_dir

DEFAULT_MODELS_DIR = "runs"
WS_MAX_MESSAGE_BYTES = 1 << 20  # no websocket message may exceed 1 MiB (audio chunks are far smaller)


def register(sub) -> None:
    serve = sub.add_parser("serve", help="serve the web demos (train, test results, draw, speech) locally",
                           description="Start a local web server with the chapter's demos: Train (live charts), "
                                       "Test results, Draw (canvas, upload, webcam) and Speech. Binds to "
                                       "127.0.0.1 unless --host says otherwise and prints the URL. Only "
                                       "requests naming this machine (or an --allowed-host) in their Host "
                                       "header are answered, and pages from other origins cannot open its "
                                       "websockets or POST to it.")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1, this machine only)")
    serve.add_argument("--port", type=int, default=8000, help="port (default: 8000; 0 picks a free one)")
    serve.add_argument("--allowed-host", action="append", default=[], metavar="NAME",
                       help=f"also answer requests whose Host header names NAME (any port); repeat for more "
                            f"names. Always answered: {', '.join(LOOPBACK_HOSTS)} and the --host address. Needed "
                            f"when the server is reached by another name, e.g. with --host 0.0.0.0")
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
    serve.add_argument("--max-audio-sessions", type=int, default=DEFAULT_MAX_AUDIO_SESSIONS, metavar="N",
                       help=f"speech sessions (/ws/audio) open at once, each with its own recognizer; one more "
                            f"is refused with a message (default: {DEFAULT_MAX_AUDIO_SESSIONS})")
    serve.add_argument("--no-builtin-speech", dest="builtin_speech", action="store_false",
                       help="leave out the speech model shipped with sightsound (the Speech page then offers only "
                            "the models folder's own, as on an install without it)")
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

    from ..errors import SightsoundError
    from ..web import create_app

    if args.predict_workers is not None and args.predict_workers < 1:
        raise SightsoundError(f"--predict-workers must be at least 1, got {args.predict_workers}")
    if args.max_audio_sessions < 1:
        raise SightsoundError(f"--max-audio-sessions must be at least 1, got {args.max_audio_sessions}")
    if args.malloc_arenas:
        from ..runtime import limit_malloc_arenas

        limit_malloc_arenas(args.malloc_arenas)
    bound = [args.host] if args.host else []  # the address itself is a name browsers may use
    app = create_app(args.models, data_dir=args.data_dir, assets_dir=args.assets,
                     predict_workers=args.predict_workers, allowed_hosts=[*bound, *args.allowed_host],
                     max_audio_sessions=args.max_audio_sessions, builtin_speech=args.builtin_speech)
    sock = bind_socket(args.host, args.port)
    config = uvicorn.Config(app, log_level=args.log_level, ws_max_size=WS_MAX_MESSAGE_BYTES,
                            timeout_graceful_shutdown=5)
    server = uvicorn.Server(config)
    print(f"sightsound: serving {app.state.web.store.root} on {url_of(sock)} (Ctrl-C to stop)", flush=True)
    if args.host not in LOOPBACK_HOSTS:
        print("sightsound: warning: listening beyond this machine; anyone who can reach it can train and "
              "upload (browsers must name it by its address or an --allowed-host)", file=sys.stderr, flush=True)
    server.run(sockets=[sock])
    return 0
