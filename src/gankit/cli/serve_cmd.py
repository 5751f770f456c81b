"""`gankit serve RUN [RUN2]` / `gankit serve --pretrained NAME`: explore trained generators
live in the browser."""
from __future__ import annotations

import argparse
import sys


def run(args: argparse.Namespace) -> int:
    from gankit.serve.errors import ServeError
    try:
        import uvicorn

        from gankit.serve.app import create_app
    except ImportError as e:
        raise ServeError(f"gankit serve needs the web server libraries ({e.name} is missing); "
                         "install them with `pip install 'gankit[serve]'`") from None
    from gankit.serve.models import load_models
    from gankit.serve.query import MAX_SAMPLES
    if args.max_samples is None:
        args.max_samples = MAX_SAMPLES
    if not 2 <= args.max_samples <= 1024:
        raise ServeError(f"--max-samples must be in 2..1024, got {args.max_samples}")
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(f"[gankit serve] warning: listening on {args.host}: anyone who can reach this "
              "machine can use the page", file=sys.stderr, flush=True)
    _check_port(args.host, args.port)
    models = load_models(args.runs, which=args.which, device=args.device,
                         pretrained=args.pretrained)
    app = create_app(models, max_samples=args.max_samples)
    url_host = f"[{args.host}]" if ":" in args.host else args.host
    print(f"[gankit serve] {', '.join(m.name for m in models)}: http://{url_host}:{args.port}/ "
          "(Ctrl-C stops)", file=sys.stderr, flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level)
    return 0


def _check_port(host: str, port: int) -> None:
    """Fail before loading any model when the address cannot be listened on."""
    import socket

    from gankit.serve.errors import ServeError
    if not 0 <= port <= 65535:
        raise ServeError(f"--port must be in 0..65535, got {port}")
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        with socket.socket(infos[0][0], socket.SOCK_STREAM) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(infos[0][4])
    except OSError as e:
        raise ServeError(f"cannot listen on {host}:{port} ({e.strerror or e}); choose another "
                         "--port (or --host)") from None


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "serve", help="explore trained generators live in the browser (local web app)",
        description="A local web page to explore one trained generator, or two side by side "
                    "on the same latents: pick a class, move sliders along the main directions "
                    "of the latent space and along the label vector between two classes, add "
                    "noise to z or the label, interpolate between two samples, see D's score "
                    "of each sample, download the grid (PNG) and the path (GIF). Needs the "
                    "`serve` extra (Starlette and uvicorn).")
    p.add_argument("runs", nargs="*", metavar="RUN",
                   help="a run folder written by `gankit train`; give two to compare them")
    p.add_argument("--pretrained", action="append", default=[], metavar="NAME",
                   help="serve a pretrained model shipped with gankit (e.g. default), alone or "
                        "beside a run; its samples have no D score (only G ships)")
    p.add_argument("--which", default="best", choices=["best", "last"], help="checkpoint")
    p.add_argument("--port", type=int, default=8000, help="TCP port (default 8000)")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--max-samples", type=int, default=None,
                   help="most samples a grid may ask for (default 64)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--log-level", default="warning",
                   choices=["critical", "error", "warning", "info", "debug"],
                   help="uvicorn's log level (default warning)")
    p.set_defaults(func=run)
