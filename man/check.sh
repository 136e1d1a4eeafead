#!/usr/bin/env bash
# The man pages cover every command `flasher --help` lists, and each page
# carries that command's own options (it was made from its --help).
set -euo pipefail
cli=$1 dir=$2 list=$3
fail=0
cmds=$("$cli" --help | sed -n '/^Commands:/,/^$/p' | awk 'NR > 1 && NF { print $1 }' | grep -v '^help$')
for c in $cmds; do
  case ";$list;" in *";$c="*) ;; *) echo "man/CMakeLists.txt has no page for '$c'"; fail=1; continue ;; esac
  page=$dir/flasher-$c.1
  [ -s "$page" ] || { echo "missing $page"; fail=1; continue; }
  grep -q "^\.TH FLASHER-${c^^} " "$page" || { echo "$page: title is not FLASHER-${c^^}"; fail=1; }
  grep -q "^flasher-$c \\\\- " "$page" || { echo "$page: NAME is not flasher-$c"; fail=1; }
  # every long option of the command's help is in its page
  for opt in $("$cli" "$c" --help | grep -o -- '--[a-z][a-z0-9-]*' | sort -u); do
    grep -q -- "${opt//-/\\\\-}" "$page" || { echo "$page: lacks $opt"; fail=1; }
  done
done
[ -s "$dir/flasher.1" ] || { echo "missing flasher.1"; fail=1; }
[ $fail -eq 0 ] && echo "man pages for: flasher $cmds"
exit $fail
