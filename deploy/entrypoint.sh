#!/bin/sh
# The image's entry point: one role per container, chosen by the command.
#
#   web | worker | beat           the Procfile line of that name
#   feed   (or marketdata)        the Procfile's `marketdata` line (manage.py run_marketdata)
#   engine (or risk)              the Procfile's `risk` line (manage.py run_margin_engine)
#   migrate                       manage.py migrate, then install_schedules (idempotent)
#   manage <args>                 manage.py <args>
#   anything else                 run as given (a shell, a one-off command)
#
# Each role runs its Procfile line, the one `make run` runs, so the two cannot
# drift; extra arguments are appended (`worker -Q reports`). With
# ENTRYPOINT_PRINT=1 it prints the command instead of running it (tests/deploy).
set -eu

PROCFILE="${PROCFILE:-/app/Procfile}"
role="${1:-web}"
[ "$#" -gt 0 ] && shift

case "$role" in
    web | worker | beat) entry="$role" ;;
    feed | marketdata) entry=marketdata ;;
    engine | risk) entry=risk ;;
    migrate)
        if [ -n "${ENTRYPOINT_PRINT:-}" ]; then
            echo "python manage.py migrate --noinput && python manage.py install_schedules"
            exit 0
        fi
        python manage.py migrate --noinput
        exec python manage.py install_schedules
        ;;
    manage) exec python manage.py "$@" ;;
    *) exec "$role" "$@" ;;
esac

line="$(grep -E "^${entry}:" "$PROCFILE" | head -n 1)"
command="${line#"${entry}":}"
if [ -z "$line" ] || [ -z "$command" ]; then
    echo "entrypoint: no '${entry}' line in ${PROCFILE}" >&2
    exit 64
fi
if [ -n "${ENTRYPOINT_PRINT:-}" ]; then
    printf '%s\n' "$command"
    exit 0
fi
# prometheus_client's multiprocess directory (README "Metrics"), when set: it must exist,
# and hold no samples of an earlier run (a container restarted in its pod keeps an
# emptyDir), as `make run` empties var/prometheus.
if [ -n "${PROMETHEUS_MULTIPROC_DIR:-}" ]; then
    mkdir -p "$PROMETHEUS_MULTIPROC_DIR"
    rm -f "$PROMETHEUS_MULTIPROC_DIR"/*.db
fi
# The Procfile is part of the image (trusted); eval applies its ${VAR:-default}s and quotes.
eval "exec ${command} \"\$@\""
