#!/bin/sh
# Creates a SoftHSM2 token in a folder of its own (tests, local development):
#   eval "$(scripts/softhsm-init.sh DIR LABEL PIN)"
# The SO PIN is the user PIN: these tokens are throwaway.
set -eu
if [ "$#" -ne 3 ]; then
  echo "usage: $0 DIR LABEL PIN" >&2
  exit 2
fi
dir=$(mkdir -p "$1/tokens" && cd "$1" && pwd)
label=$2
pin=$3
conf="$dir/softhsm2.conf"
cat >"$conf" <<CONF
directories.tokendir = $dir/tokens
objectstore.backend = file
log.level = ERROR
slots.removable = false
CONF
SOFTHSM2_CONF="$conf" softhsm2-util --init-token --free --label "$label" --so-pin "$pin" --pin "$pin" >/dev/null
echo "export SOFTHSM2_CONF='$conf'"
echo "export PKCS11_LIBRARY='/usr/lib/softhsm/libsofthsm2.so'"
