#!/usr/bin/env bash
# One command per paper: sets up (installing the data its default run reads), builds, and runs that
# paper's experiment in miniature on this machine's CPU. Extra arguments go to the example program
# (each has --help, which also shows how to point it at the paper's full data set).
#
#   scripts/reproduce.sh pld       # examples/distill_pld     teacher -> student, CE vs PLD (Fashion-MNIST)
#   scripts/reproduce.sh opl       # examples/opl_classify    CE vs CE + OPL (Fashion-MNIST)
#   scripts/reproduce.sh anyloss   # examples/anyloss_tabular BCE vs AnyLoss, 10-fold CV (Breast Cancer Wisconsin)
#   scripts/reproduce.sh fcn       # examples/fcn_ctr         FCN with Tri-BCE vs its ablations (synthetic CTR)
#   scripts/reproduce.sh cce       # examples/lm_cce          word LM, materialised CE vs CCE (the fortunes corpus)
#
# The results go to runs/<paper>/ (metrics.jsonl and, where the example saves them, weights).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
usage() { sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; }
if [ $# -lt 1 ]; then usage >&2; exit 2; fi
paper="$1"
shift
packages=()
case "$paper" in
  pld) program=distill_pld ;;
  opl) program=opl_classify ;;
  anyloss) program=anyloss_tabular; packages=(python3-sklearn) ;;  # ships breast_cancer.csv
  fcn) program=fcn_ctr ;;
  cce) program=lm_cce; packages=(fortunes) ;;                      # /usr/share/games/fortunes
  -h | --help) usage; exit 0 ;;
  *) echo "reproduce.sh: unknown paper '$paper' (pld, opl, anyloss, fcn or cce)" >&2; exit 2 ;;
esac
"$root/scripts/setup.sh" "${packages[@]}"
"$root/scripts/build.sh"
exec "${EMBER_BUILD_DIR:-$root/build}/examples/$program" --out-dir "$root/runs/$paper" "$@"
