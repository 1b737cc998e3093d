"""``xae explore RUN [RUN ...]``: the latent explorer, served locally or written as a folder.

    xae explore runs/vae-digits                    # http://127.0.0.1:<free port>/
    xae explore runs/ae-digits runs/vae-digits --open
    xae explore runs/sweep-vae-digits              # a sweep folder: a slider over its runs
    xae explore runs/vae-mnist --port 8765 --host 0.0.0.0   # exposed on purpose
    xae explore runs/vae-mnist --static site/      # a folder for any static file server
"""
from __future__ import annotations

import argparse
import signal
import sys
import threading
import webbrowser
from pathlib import Path
from typing import Any


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "explore", help="a local web page that decodes the latent space under the cursor",
        description="Serve the latent explorer for one or more runs: the test set's latent "
        "map, the decoded image under the cursor (in the browser, with onnxruntime-web), "
        "pinned points and interpolations, prior samples, and a switch or side-by-side view "
        "between runs. A sweep folder (written by xae sweep), given alone, shows its runs "
        "in the order of the swept values, each map turned to match its neighbour's.")
    p.add_argument("runs", nargs="+", metavar="RUN", help="run folders, or one sweep folder")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default "
                   "127.0.0.1, this machine only; 0.0.0.0 exposes the explorer to the network)")
    p.add_argument("--port", type=int, default=0, help="port (default: a free one, printed)")
    p.add_argument("--open", action="store_true", help="open the page in the default browser")
    p.add_argument("--static", metavar="OUT_DIR", help="write a self-contained folder "
                   "(page, data, ONNX decoders, runtime) instead of serving")
    p.add_argument("--max-points", type=int, help="map at most this many test points "
                   "(default: the whole test set)")
    p.add_argument("--seed", type=int, default=0, help="seed of the prior draws")
    p.set_defaults(fn=cmd_explore)


def cmd_explore(args: argparse.Namespace) -> int:
    from xae.errors import XaeError, positive_int
    from xae.explore.runs import load_run, saved_decoder, unique_names
    from xae.explore.server import make_server
    from xae.explore.site import build_site, check_static_target, write_static
    from xae.explore.sweep import is_sweep, load_sweep, read_sweep
    from xae.export import require_onnx

    if threading.current_thread() is threading.main_thread():
        # Ctrl-C stops it even when started with SIGINT ignored (as in a background job's shell)
        signal.signal(signal.SIGINT, signal.default_int_handler)
    if args.max_points is not None:
        positive_int(args.max_points, "--max-points")
    if args.static and (args.port or args.open or args.host != "127.0.0.1"):
        raise XaeError("--static writes a folder and serves nothing; drop --port, --host and "
                       "--open")
    sweeps = [r for r in args.runs if is_sweep(r)]
    if sweeps and len(args.runs) > 1:
        raise XaeError(f"{sweeps[0]} is a sweep folder, shown as a slider over its own runs; "
                       f"give it alone (xae explore {sweeps[0]}), or name the runs to compare "
                       f"instead of it")
    sweep = read_sweep(sweeps[0]) if sweeps else None
    if args.static:  # fail before the slow part: a folder it must not replace, no runtime
        from xae.explore.runtime import require_ort_dir

        check_static_target(args.static, args.runs)
        require_ort_dir()
    paths = [m.path for m in sweep.members if m.failed is None] if sweep else args.runs
    if any(Path(r).is_dir() and saved_decoder(Path(r)) is None for r in paths):
        require_onnx()  # a run without a fresh export/decoder.onnx is exported on loading
    if sweep is not None:
        views = load_sweep(sweep, max_points=args.max_points, seed=args.seed)
        for m in sweep.failed:
            print(f"xae explore: {m.name} of the sweep is listed as failed: {m.failed}",
                  file=sys.stderr)
    else:
        views = [load_run(r, max_points=args.max_points, seed=args.seed) for r in args.runs]
    unique_names(views)
    shown = f"{len(views)} run{'s' * (len(views) > 1)}"
    if sweep is not None:
        shown = f"sweep {sweep.name}: {shown}" + (f", {len(sweep.failed)} failed"
                                                  if sweep.failed else "")
    if args.static:
        out = write_static(views, args.static, sweep=sweep)
        print(f"wrote {out}/ ({shown}); serve it with any static file server, e.g. "
              f"python -m http.server -d {out}")
        return 0
    server = make_server(build_site(views, live=True, sweep=sweep), views, args.host,
                         args.port)
    print(f"xae explore: {server.url} ({shown}; Ctrl-C stops)", flush=True)
    if server.server_address[0] not in ("127.0.0.1", "::1"):
        print("xae explore: listening beyond this machine; anyone who can reach it can use "
              "the decoder", file=sys.stderr)
    if args.open:
        webbrowser.open(server.url)
    try:
        server.serve_forever()
    except KeyboardInterrupt:  # Ctrl-C is how it is meant to stop
        print("xae explore: stopped", file=sys.stderr)
    finally:
        server.server_close()
    return 0
