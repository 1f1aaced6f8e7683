#!/usr/bin/env bash
# The tested dependency set: requirements.lock pins every distribution the test suite passed with, and the README's
# commands install through it (`pip install -c requirements.lock ...`). Upgrades are deliberate: this script builds a
# throw-away venv, resolves the new set, prints what changed, runs the whole suite in that venv, and replaces
# requirements.lock only when the suite passes (else the candidate stays in requirements.lock.candidate).
#
#   scripts/lock.sh upgrade NAME [NAME ...]   newest NAME within pyproject.toml's range, every other pin kept
#   scripts/lock.sh sync                      keep every pin; pin what pyproject.toml newly needs, drop what it no longer does
#   scripts/lock.sh refresh                   re-resolve everything within pyproject.toml's ranges
#   scripts/lock.sh check                     install exactly the lock and run the suite
#
# Extra pytest arguments go in PYTEST_ARGS (e.g. PYTEST_ARGS='-m "not slow"'). Needs the package registries.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
mode=${1:-}
[ -n "$mode" ] || { sed -n 2,13p "$0"; exit 2; }
shift
venv=$(mktemp -d)/venv
constraints=$(mktemp)
python3 -m venv "$venv"
pip=("$venv/bin/pip" install -q)
case "$mode" in
  upgrade)
    [ $# -ge 1 ] || { echo "upgrade needs at least one package name" >&2; exit 2; }
    pattern=$(printf '%s|' "$@" | tr '[:upper:]_.' '[:lower:]--')
    # Names compare case-insensitively with -, _ and . alike (PEP 503).
    awk -v names="^(${pattern%|})==" '{ line = tolower($0); gsub(/[_.]/, "-", line) } line !~ names' \
      requirements.lock > "$constraints"
    "${pip[@]}" -c "$constraints" -e ".[test]"
    "${pip[@]}" -c "$constraints" --upgrade "$@"
    ;;
  sync) grep -v '^#' requirements.lock > "$constraints"; "${pip[@]}" -c "$constraints" -e ".[test]" ;;
  refresh) "${pip[@]}" -e ".[test]" ;;
  check) "${pip[@]}" -c requirements.lock -e ".[test]" ;;
  *) echo "unknown mode '$mode'" >&2; exit 2 ;;
esac
{
  echo "# The dependency set the test suite passed with. Regenerate with scripts/lock.sh (never by hand)."
  "$venv/bin/pip" freeze --exclude-editable | grep -v '^-e ' | sort -f
} > requirements.lock.candidate
echo "== changes against requirements.lock"
diff <(grep -v '^#' requirements.lock) <(grep -v '^#' requirements.lock.candidate) || true
echo "== running the suite with the candidate set"
status=0
(cd "$root" && eval "\"$venv/bin/python\" -m pytest -q ${PYTEST_ARGS:-}") || status=$?
if [ "$status" -eq 0 ]; then
  mv requirements.lock.candidate requirements.lock
  echo "suite passed: requirements.lock updated"
else
  echo "suite failed (exit $status): requirements.lock left as it was; the candidate is requirements.lock.candidate" >&2
fi
exit "$status"
