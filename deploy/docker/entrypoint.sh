#!/bin/sh
# moe-entrypoint ROLE [FLAGS...]: starts one moe-cluster process in a pod,
# adding the flags that depend on where the pod sits in the cluster.
#
#   expert-worker  moe-expert-worker --experts=SPEC: SPEC is the file
#                  worker-I of the placement ConfigMap when it exists, else
#                  mod:I/N, with I the StatefulSet ordinal (the number after
#                  the last '-' of MOE_POD_NAME, or of the hostname) and N the
#                  file `workers`.
#   router         moe-router --workers=W-0.W.NS.svc.DOMAIN:PORT,... for the N
#                  workers of the expert-worker StatefulSet's headless Service.
#   gateway        moe-gateway --routers=R-0.R.NS.svc.DOMAIN:PORT,... for the
#                  `routers` replicas of the router StatefulSet.
#   help           print this text.
#   anything else  run as given (e.g. moe-model make-tiny ...).
#
# FLAGS are passed on unchanged, after the derived flag. Environment:
#   MOE_PLACEMENT_DIR   placement ConfigMap mount (default /etc/moe/placement)
#   MOE_BIN_DIR         where the binaries are (default /usr/local/bin)
#   MOE_POD_NAME        pod name (downward API); default: hostname
#   MOE_NAMESPACE       pod namespace (downward API); default: default
#   MOE_CLUSTER_DOMAIN  cluster DNS domain (default cluster.local)
#   MOE_WORKER_SERVICE / MOE_WORKER_PORT  (default moe-expert-worker / 7001)
#   MOE_ROUTER_SERVICE / MOE_ROUTER_PORT  (default moe-router / 7100)
#   MOE_ENTRYPOINT_DRY_RUN=1  print the command, one argument a line, and exit
#                             (the manifest consistency test uses this)
set -eu

die() { echo "moe-entrypoint: $*" >&2; exit 64; }

[ $# -ge 1 ] || die "usage: moe-entrypoint ROLE [FLAGS...]"
role=$1
shift

conf=${MOE_PLACEMENT_DIR:-/etc/moe/placement}
bin=${MOE_BIN_DIR:-/usr/local/bin}
ns=${MOE_NAMESPACE:-default}
domain=${MOE_CLUSTER_DOMAIN:-cluster.local}

# Value of placement key $1 with blanks removed; empty when absent.
key() { if [ -f "$conf/$1" ]; then tr -d ' \t\r\n' < "$conf/$1"; fi; }

count() {
  n=$(key "$1")
  case $n in
    '' ) die "$conf/$1 is missing (the placement ConfigMap must say how many $1 there are)" ;;
    *[!0-9]* | 0 ) die "$conf/$1 is '$n', want a positive integer" ;;
  esac
  echo "$n"
}

# host-0.svc.NS.svc.DOMAIN:PORT,... for $1 replicas of StatefulSet/Service $2.
peers() {
  i=0 list=""
  while [ "$i" -lt "$1" ]; do
    list="$list${list:+,}$2-$i.$2.$ns.svc.$domain:$3"
    i=$((i + 1))
  done
  echo "$list"
}

case $role in
  help | -h | --help)
    sed -n '2,/^set -eu/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'
    exit 0
    ;;
  expert-worker)
    pod=${MOE_POD_NAME:-$(hostname)}
    ordinal=${pod##*-}
    case $ordinal in '' | *[!0-9]*) die "pod name '$pod' does not end in a StatefulSet ordinal" ;; esac
    n=$(count workers)
    [ "$ordinal" -lt "$n" ] || die "pod $pod has ordinal $ordinal but the placement says workers=$n"
    spec=$(key "worker-$ordinal")
    set -- "$bin/moe-expert-worker" "--experts=${spec:-mod:$ordinal/$n}" "$@"
    ;;
  router)
    n=$(count workers)
    set -- "$bin/moe-router" \
      "--workers=$(peers "$n" "${MOE_WORKER_SERVICE:-moe-expert-worker}" "${MOE_WORKER_PORT:-7001}")" "$@"
    ;;
  gateway)
    n=$(count routers)
    set -- "$bin/moe-gateway" \
      "--routers=$(peers "$n" "${MOE_ROUTER_SERVICE:-moe-router}" "${MOE_ROUTER_PORT:-7100}")" "$@"
    ;;
  *)
    set -- "$role" "$@"
    ;;
esac

if [ "${MOE_ENTRYPOINT_DRY_RUN:-}" = 1 ]; then
  printf '%s\n' "$@"
  exit 0
fi
exec "$@"
