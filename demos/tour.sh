#!/usr/bin/env bash
# A tour of the Nua orchestrator: start it in a throwaway home, manage users
# and settings with `nua`, see an error come back, and stop.
#
#   demos/tour.sh
#
# Works from a fresh checkout (bin/ creates .venv on first use). Everything
# lives in a temporary folder that is removed at the end; the orchestrator is
# stopped even if a step fails or you press Ctrl-C.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# Short on purpose: unix socket paths are limited to 107 bytes.
DEMO_HOME="$(mktemp -d -t nua-tour.XXXXXX)"
STARTED=0

cleanup() {
    local status=$?
    if [[ $STARTED == 1 ]]; then
        step "stop the orchestrator"
        orchestrator stop || status=1
    fi
    rm -rf "$DEMO_HOME"
    if [[ $status == 0 ]]; then
        echo "tour finished; $DEMO_HOME removed"
    else
        echo "tour failed (exit $status); $DEMO_HOME removed" >&2
    fi
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [[ -t 1 ]]; then BOLD=$'\033[1m' PLAIN=$'\033[0m'; else BOLD="" PLAIN=""; fi
step() { printf '\n%s# %s%s\n' "$BOLD" "$*" "$PLAIN"; }
# A command as you would type it (arguments quoted when they need it).
quote() {
    local arg words=()
    for arg in "$@"; do
        if [[ $arg =~ ^[A-Za-z0-9_./:@=+,-]+$ ]]; then
            words+=("$arg")
        else
            words+=("'${arg//\'/\'\\\'\'}'")
        fi
    done
    printf '%s' "${words[*]}"
}
show() { printf '$ %s\n' "$(quote "$@")"; }

# The two CLIs, always on the throwaway home.
orchestrator() { show nua-orchestrator "$@"; "$ROOT/bin/nua-orchestrator" "$@" --home "$DEMO_HOME"; }
nua() { show nua "$@"; "$ROOT/bin/nua" "$@" --home "$DEMO_HOME"; }

echo "Nua orchestrator tour; every command runs with --home $DEMO_HOME"

step "start the orchestrator (supervisord, the rpc worker, the sentinel)"
STARTED=1
orchestrator start

step "ask the rpc worker whether it answers"
nua ping

step "add three users; carol's password comes from stdin, never from the command line"
nua user add alice --email alice@example.com
nua user add bob --email bob@example.org --role admin
PASSWORD_LINE='correct horse battery staple'
printf '$ echo %s | %s\n' "$(quote "$PASSWORD_LINE")" \
    "$(quote nua user add carol --email carol@example.net --password-stdin)"
echo "$PASSWORD_LINE" |
    "$ROOT/bin/nua" user add carol --email carol@example.net --password-stdin --home "$DEMO_HOME"

step "list them"
nua user list

step "make alice an admin and give her a new address"
nua user update alice --role admin --email alice@example.net
nua user show alice

step "delete bob"
nua user delete bob
nua user list --json

step "errors come back as one line on stderr and a documented exit code"
code=0
nua user add alice --email other@example.com 2>&1 || code=$?
echo "-> exit code $code (5: already exists)"
code=0
nua user show bob 2>&1 || code=$?
echo "-> exit code $code (4: not found)"

step "settings live in the database; nua settings changes them"
nua settings list
nua settings set sentinel.interval 2
nua settings reset sentinel.interval

step "every method, plugins' included, can be discovered and called"
nua methods
nua call user.count '{"role": "admin"}'
