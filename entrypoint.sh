#!/usr/bin/env bash
# The appliance's single entrypoint (Docker ENTRYPOINT and `make run`): prepare the storage, then run supervisord in
# the foreground. SIGTERM / Ctrl-C stop every program (PostgreSQL with a fast shutdown) and exit 0.
set -euo pipefail

usage() {
	cat <<'EOF'
usage: entrypoint.sh [--device auto|cpu|cuda] [--reset-config] [--external-db URL] [-h|--help]

  --device auto|cpu|cuda  override the hardware probe, any case (same as env COMPUTE_DEVICE; ROCM there = GPU config)
  --reset-config          re-copy the config for the detected hardware (the old one is kept as config.yaml.bak)
  --external-db URL       use this PostgreSQL (postgresql:// or postgresql+psycopg://) instead of the embedded one
                          (same as env EXTERNAL_DB)

environment: APP_ID APP_VERSION APP_SECRET APP_HOST (127.0.0.1) APP_PORT (10034)
             APP_PERSISTENT_STORAGE (./persistent_storage) NEXTCLOUD_URL COMPUTE_DEVICE EXTERNAL_DB
EOF
}

bad_usage() {
	echo "entrypoint.sh: $1" >&2
	usage >&2
	exit 2
}

device=""
reset_config=""
while [ $# -gt 0 ]; do
	case "$1" in
	--device) [ $# -ge 2 ] || bad_usage "--device needs a value"; device="$2"; shift 2 ;;
	--device=*) device="${1#*=}"; shift ;;
	--reset-config) reset_config="--reset-config"; shift ;;
	--external-db) [ $# -ge 2 ] || bad_usage "--external-db needs a URL"; export EXTERNAL_DB="$2"; shift 2 ;;
	--external-db=*) export EXTERNAL_DB="${1#*=}"; shift ;;
	-h | --help) usage; exit 0 ;;
	*) bad_usage "unknown argument '$1'" ;;
	esac
done
# any case, as COMPUTE_DEVICE: --device CPU or CUDA is what an admin types after reading "CPU target"
case "${device,,}" in
"" | auto | cpu | cuda) device="${device,,}" ;;
*) bad_usage "--device must be auto, cpu or cuda, not '$device'" ;;
esac

# relative storage paths are relative to where the caller stands, not to this script
storage="${APP_PERSISTENT_STORAGE:-persistent_storage}"
case "$storage" in /*) ;; *) storage="$PWD/$storage" ;; esac
mkdir -p "$storage"
export APP_PERSISTENT_STORAGE="$storage"
export APP_HOST="${APP_HOST:-127.0.0.1}"
export APP_PORT="${APP_PORT:-10034}"
export APP_ID="${APP_ID:-context_chat_backend}"
export APP_VERSION="${APP_VERSION:-4.0.0}"

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here"
# the venv of `make install` when present, else the python3 on PATH (the Docker image installs into it)
if [ -x "$here/.venv/bin/python" ]; then
	python="$here/.venv/bin/python"
else
	python="$(command -v python3)" || { echo "entrypoint.sh: no python3 on PATH; run 'make install'" >&2; exit 1; }
fi
PATH="$(dirname "$python"):$PATH"
export PATH

# prepare runs in the background so a SIGTERM during it is forwarded instead of orphaning it
prepare_args=(-m appliance prepare ${device:+--device "$device"} $reset_config)
prepare_pid=""
# installed before the child exists, so no signal can fall between the two
trap 'if [ -n "$prepare_pid" ]; then kill -TERM "$prepare_pid" 2>/dev/null || true; wait "$prepare_pid" 2>/dev/null || true; fi; exit 0' TERM INT
# this role's run dir, where prepare writes launch.env; open on fd 9, which prepare locks (appliance/run_lock.py)
# and this shell keeps, then supervisord (exec keeps it): a second start on this storage fails before writing
# (none when the dir cannot be made: prepare then says why)
env_file="$("$python" -m appliance.launch)"
run_lock_fd=""
if mkdir -p "$(dirname "$env_file")" 2>/dev/null; then
	exec 9<"$(dirname "$env_file")"
	run_lock_fd=9
fi
# a uid without a passwd entry (docker run --user 12345, OpenShift's random uid): initdb and postgres refuse to run
# without a name for it, and peer authentication admits the app's user by name; nss_wrapper gives it one from
# copies of the user and group databases in the run dir (PostgreSQL under root runs as ccb_postgres: never needed)
if [ -n "$run_lock_fd" ] && ! id -un >/dev/null 2>&1; then
	for nss_wrapper_lib in /usr/lib/*/libnss_wrapper.so /usr/lib/libnss_wrapper.so ""; do
		[ -e "$nss_wrapper_lib" ] && break
	done
	nss_dir="$(dirname "$env_file")"
	uid="$(id -u)"
	gid="$(id -g)"
	nameless_entry="ccb_$uid:x:$uid:$gid:Context Chat backend:/nonexistent:/usr/sbin/nologin"
	# renamed into place: a second start on this storage (refused by prepare) must not cut a running one's files;
	# a run dir this uid cannot write is left to prepare, which says what to do
	if [ -n "$nss_wrapper_lib" ] \
		&& { getent passwd; echo "$nameless_entry"; } >"$nss_dir/passwd.tmp" \
		&& { getent group; getent group "$gid" >/dev/null || echo "ccb_$gid:x:$gid:"; } >"$nss_dir/group.tmp" \
		&& mv -f "$nss_dir/passwd.tmp" "$nss_dir/passwd" && mv -f "$nss_dir/group.tmp" "$nss_dir/group"; then
		export LD_PRELOAD="$nss_wrapper_lib${LD_PRELOAD:+ $LD_PRELOAD}"
		export NSS_WRAPPER_PASSWD="$nss_dir/passwd" NSS_WRAPPER_GROUP="$nss_dir/group"
	fi
fi
CCB_RUN_LOCK_FD="$run_lock_fd" "$python" "${prepare_args[@]}" &
prepare_pid=$!
status=0
wait "$prepare_pid" || status=$?
if [ "$status" -ne 0 ]; then
	echo "entrypoint.sh: start-up aborted (python -m appliance prepare exited $status); see the error above" >&2
	exit "$status"
fi

set -a
# shellcheck source=/dev/null
. "$env_file"
set +a
supervisor_user=()
# --user root spares root supervisord's "running as root" warning; a uid without a passwd entry (docker run --user
# 12345) gets none: supervisord refuses it ("Invalid user id") and changes no user unless it runs as root
if user_name="$(id -un 2>/dev/null)"; then
	supervisor_user=(--user "$user_name")
fi
# supervisord with its own log in JSON lines (appliance/supervisord_json.py); the TERM/INT trap above stays until
# this exec, which resets it: from then on supervisord handles the signal
# this run's lock stays open through a `supervisorctl reload`, which closes the other inherited descriptors
CCB_RUN_LOCK_FD="$run_lock_fd" exec "$python" -m appliance.supervisord_json "${supervisor_user[@]}" -n -c "$here/supervisord.conf"
