#!/usr/bin/env bash
#
# ./build.sh         install what is missing, build
#                    build/ngx_http_stockprice_module.so
# ./build.sh run     build if needed, run nginx in the foreground with
#                    demo/nginx.conf
# ./build.sh test    build if needed, run the unit tests (tests/), the
#                    parser's fuzzer for FUZZ_TIME seconds (default 30),
#                    build the Debian package (as ./build.sh deb) and run
#                    the integration tests (t/; t/deb.t installs the
#                    package into the system's nginx, then purges it)
# ./build.sh deb     build/libnginx-mod-http-stockprice_<version>_<arch>.deb
#                    from debian/ as Debian builds its libnginx-mod-*
#                    packages (dh-sequence-nginx), checked by lintian
# ./build.sh bench   build if needed, install BENCH_PACKAGES if missing (nchan,
#                    for the event-stream fan-out), raise the open files
#                    limit, run bench/bench.pl: the module side by side with
#                    nginx's own ceilings and nchan (figures, no assertions)
# ./build.sh cluster the multi-host demo (t/cluster.t, as root): a provider,
#                    two origins and six edges, each an nginx in a network
#                    namespace of its own (198.51.100.0/24 inside them
#                    only); prints what it shows
# ./build.sh valgrind [t/FILE.t ...]
#                    the integration tests (all, or those named) with nginx
#                    under valgrind: fails on invalid reads, writes or frees
#                    and on memory definitely lost from the module
#
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
BUILD="$ROOT/build"
SRC="$BUILD/nginx-src"
MODULE="$BUILD/ngx_http_stockprice_module.so"
NGINX_BIN=${NGINX_BIN:-/usr/sbin/nginx}

PACKAGES="nginx nginx-dev libcurl4-openssl-dev libcjson-dev libcmocka-dev
          gcc make clang perl libtest-simple-perl libhttp-tiny-perl
          libpcre2-dev libssl-dev zlib1g-dev valgrind wrk openssl
          ca-certificates zstd prometheus chromium fonts-dejavu-core
          libjson-validator-perl iproute2 curl"

# only for ./build.sh bench: nchan, the event-stream fan-out's comparison
# (installing it enables it for the system's nginx too; the bench runs its
# own configurations)
BENCH_PACKAGES="libnginx-mod-nchan"

log() { printf '%s\n' "build.sh: $*" >&2; }


# install_packages PACKAGE...: those of them not installed yet

install_packages() {
    local missing=() p

    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null \
            | grep -q 'install ok installed' || missing+=("$p")
    done

    [ ${#missing[@]} -eq 0 ] && return 0

    log "installing ${missing[*]}"
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -q
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q \
        --no-install-recommends "${missing[@]}"
}


configure_nginx() {
    local stamp="$SRC/.configured"

    # the packaged binary's compiler and linker options (-O2, hardening),
    # as the Debian package of a module is built: nginx's own default is -O
    local cc_opt ld_opt
    cc_opt=$("$NGINX_BIN" -V 2>&1 | sed -n "s/.*--with-cc-opt='\([^']*\)'.*/\1/p")
    ld_opt=$("$NGINX_BIN" -V 2>&1 | sed -n "s/.*--with-ld-opt='\([^']*\)'.*/\1/p")

    # configure once; again when the module's config file or the options
    # change
    if [ -f "$stamp" ] && [ "$stamp" -nt "$ROOT/config" ] \
       && [ -f "$SRC/objs/Makefile" ] \
       && [ "$(cat "$stamp")" = "$cc_opt|$ld_opt" ]
    then
        return 0
    fi

    log "configuring nginx $("$NGINX_BIN" -v 2>&1 | sed 's/.*\///')"
    rm -rf "$SRC"
    mkdir -p "$BUILD"
    cp -r /usr/share/nginx/src "$SRC"

    # the packaged binary's own flags, so the module's signature matches
    local NGX_CONF_FLAGS=()
    # shellcheck disable=SC1091
    . "$SRC/conf_flags"

    (cd "$SRC" && ./configure "${NGX_CONF_FLAGS[@]}" --with-compat \
        --with-cc-opt="$cc_opt" --with-ld-opt="$ld_opt" \
        --add-dynamic-module="$ROOT" >"$BUILD/configure.log" 2>&1) \
        || { tail -30 "$BUILD/configure.log" >&2; exit 1; }

    printf '%s' "$cc_opt|$ld_opt" >"$stamp"
}


build_module() {
    # shellcheck disable=SC2086
    install_packages $PACKAGES
    configure_nginx

    make -s -C "$SRC" -f objs/Makefile modules \
        >"$BUILD/make.log" 2>&1 || { cat "$BUILD/make.log" >&2; exit 1; }

    # replace, never overwrite in place: a running nginx has the old file
    # mapped
    local so="$SRC/objs/ngx_http_stockprice_module.so"
    if ! cmp -s "$so" "$MODULE"; then
        install -m 644 "$so" "$MODULE.tmp"
        mv -f "$MODULE.tmp" "$MODULE"
        log "built $MODULE"
    fi
}


# the npm tools of tools/package.json (the OpenAPI linter, Swagger UI,
# playwright-core), as its lock file pins them, into tools/node_modules

install_tools() {
    local lock="$ROOT/tools/package-lock.json"
    local have="$ROOT/tools/node_modules/.package-lock.json"

    if [ -f "$have" ] && [ ! "$lock" -nt "$have" ]; then
        return 0
    fi

    # the machine's Node.js if it has one (these come with npm), Debian's
    # otherwise
    command -v npm >/dev/null 2>&1 || install_packages nodejs npm

    log "installing the npm tools (tools/package.json)"
    (cd "$ROOT/tools" && npm ci --no-audit --no-fund --loglevel=error)
}


run_demo() {
    local prefix="$BUILD/demo"

    build_module
    install_tools    # Swagger UI at /docs/
    mkdir -p "$prefix/logs" "$prefix/state"
    # state=: the workers write it, as nobody when nginx runs as root
    chmod 1777 "$prefix/state"

    sed -e "s|%%MODULE%%|$MODULE|g" \
        -e "s|%%DEMO%%|$ROOT/demo|g" \
        -e "s|%%ROOT%%|$ROOT|g" \
        -e "s|%%PREFIX%%|$prefix|g" \
        "$ROOT/demo/nginx.conf" >"$prefix/nginx.conf"

    "$NGINX_BIN" -t -q -p "$prefix/" -c "$prefix/nginx.conf"

    log "serving http://127.0.0.1:8080/ (the page), /api/StockPrice," \
        "/openapi.yaml and /docs/ (Ctrl-C stops)"
    exec "$NGINX_BIN" -p "$prefix/" -c "$prefix/nginx.conf" -g 'daemon off;'
}


run_tests() {
    local failed=0

    build_module

    echo "== unit tests (tests/, cmocka)"
    make -s -C "$ROOT/tests" check || failed=1

    echo "== fuzzing the upstream parser and the state loader" \
         "(tests/fuzz_parse.c, tests/fuzz_state.c, libFuzzer)"
    run_fuzz || failed=1

    # t/deb.t installs it into the machine's nginx and purges it again
    echo "== the Debian package (./build.sh deb)"
    (build_deb) || failed=1

    echo "== integration tests (t/, prove)"
    install_tools
    open_files
    (cd "$ROOT" && STOCKPRICE_MODULE="$MODULE" NGINX_BIN="$NGINX_BIN" \
        prove -I t/lib t/) || failed=1

    return $failed
}


# ./build.sh deb: the Debian package of the module from debian/.
#
# The working tree (git's tracked and untracked-but-not-ignored files, so
# build/, tools/node_modules and objects stay out) is copied into a
# temporary directory; the orig tarball is made from that copy without
# debian/ (source format 3.0 (quilt)); dpkg-buildpackage builds the source
# and binary packages there, as Debian's libnginx-mod-* packages are built
# (dh-sequence-nginx: the module's config run against /usr/share/nginx/src,
# "make modules", the .so load-tested with nginx -t); lintian checks both
# and fails the build on an error.  Everything the build made is in
# build/deb/, its log in build/deb/build.log, lintian's in
# build/deb/lintian.log, and the .deb is copied to build/.

build_deb() {
    install_packages nginx nginx-dev build-essential debhelper dpkg-dev \
        fakeroot lintian libcurl4-openssl-dev libcjson-dev libssl-dev \
        zlib1g-dev

    local pkg version upstream arch tmp src out header
    pkg=$(dpkg-parsechangelog -l "$ROOT/debian/changelog" -S Source)
    version=$(dpkg-parsechangelog -l "$ROOT/debian/changelog" -S Version)
    upstream=${version%-*}
    arch=$(dpkg --print-architecture)
    out="$BUILD/deb"

    # the changelog's upstream version is the module's own
    header=$(sed -n 's/^#define NGX_HTTP_STOCKPRICE_VERSION *"\(.*\)"/\1/p' \
        "$ROOT/ngx_stockprice_module/ngx_http_stockprice_module.h")
    if [ "$header" != "$upstream" ]; then
        log "debian/changelog says $upstream, the module says $header:" \
            "add a changelog entry (dch -v $header-1)"
        exit 1
    fi

    tmp=$(mktemp -d "${TMPDIR:-/tmp}/stockprice-deb.XXXXXX")
    src="$tmp/$pkg-$upstream"
    mkdir -p "$src"

    if git -C "$ROOT" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
        (cd "$ROOT" && git ls-files -z --cached --others --exclude-standard \
            | while IFS= read -r -d '' f; do
                  # a file deleted in the work tree but not in the index
                  if [ -e "$f" ] || [ -L "$f" ]; then printf '%s\0' "$f"; fi
              done \
            | tar --null -T - -cf -) | tar -xf - -C "$src"
    else
        tar -C "$ROOT" --exclude=./build --exclude=./tools/node_modules \
            --exclude=./tests/build --exclude='*.o' --exclude='*.so' \
            --exclude=./.git -cf - . | tar -xf - -C "$src"
    fi

    tar -C "$tmp" --exclude="$pkg-$upstream/debian" --sort=name \
        --owner=0 --group=0 --numeric-owner \
        -czf "$tmp/${pkg}_$upstream.orig.tar.gz" "$pkg-$upstream"

    log "building ${pkg}_${version}_$arch.deb in $tmp"
    if ! (cd "$src" && dpkg-buildpackage -us -uc) >"$tmp/build.log" 2>&1
    then
        tail -40 "$tmp/build.log" >&2
        log "dpkg-buildpackage failed: $tmp/build.log (kept)"
        exit 1
    fi

    rm -rf "$out" "$BUILD/${pkg}"_*.deb
    mkdir -p "$out"
    find "$tmp" -maxdepth 1 -type f -exec mv -t "$out" {} +
    rm -rf "$tmp"

    log "lintian"
    local rc=0
    lintian --fail-on error --display-info \
        "$out/${pkg}_${version}_$arch.changes" >"$out/lintian.log" 2>&1 \
        || rc=$?
    cat "$out/lintian.log" >&2
    if [ $rc -ne 0 ]; then
        log "lintian failed (exit $rc): $out/lintian.log"
        exit 1
    fi

    install -m 644 "$out/${pkg}_${version}_$arch.deb" "$BUILD/"
    log "built $BUILD/${pkg}_${version}_$arch.deb"
}

# libFuzzer for a bounded time from the committed corpus; its chatter goes
# to build/fuzz.log, one line of outcome to the output

run_fuzz() {
    local time=${FUZZ_TIME:-30} log="$BUILD/fuzz.log" runs

    if [ "$time" -gt 60 ]; then
        time=60
    fi

    if ! make -s -C "$ROOT/tests" fuzz-smoke FUZZ_TIME="$time" \
        >"$log" 2>&1
    then
        tail -40 "$log"
        echo "fuzz: FAILED (crash or build error), see $log"
        return 1
    fi

    runs=$(sed -n \
        's/^Done \([0-9]*\) runs in \([0-9]*\) second.*/\1 runs in \2 s/p' \
        "$log" | paste -sd ';' | sed 's/;/ (parser); /; s/$/ (state)/')
    echo "fuzz: ${runs:-? runs}, no crash, no sanitizer report"
}


# t/stream.t holds 1,000 streams open: the test and nginx need more files
# than a soft limit of 1024 gives; up to the hard limit, nothing asked of
# nginx (valgrind refuses its setrlimit)

open_files() {
    local hard

    hard=$(ulimit -Hn)

    if [ "$hard" = unlimited ] || [ "$hard" -gt 65536 ]; then
        hard=65536
    fi

    ulimit -n "$hard" 2>/dev/null || true

    if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt 4096 ]; then
        log "only $(ulimit -n) open files allowed: t/stream.t needs 4096"
    fi
}


run_valgrind() {
    build_module

    shift
    [ $# -gt 0 ] || set -- t/

    echo "== integration tests under valgrind (t/, prove)"
    open_files
    cd "$ROOT" && TEST_VALGRIND=1 STOCKPRICE_MODULE="$MODULE" \
        NGINX_BIN="$NGINX_BIN" prove -I t/lib "$@"
}


case "${1:-build}" in
    build)  build_module ;;
    run)    run_demo ;;
    test)   run_tests ;;
    deb)    build_deb ;;
    bench)  build_module
            # shellcheck disable=SC2086
            install_packages $BENCH_PACKAGES
            open_files
            STOCKPRICE_MODULE="$MODULE" NGINX_BIN="$NGINX_BIN" \
                perl "$ROOT/bench/bench.pl" ;;
    cluster) build_module
            cd "$ROOT" && CLUSTER_DEMO=1 STOCKPRICE_MODULE="$MODULE" \
                NGINX_BIN="$NGINX_BIN" perl -I t/lib t/cluster.t ;;
    valgrind) run_valgrind "$@" ;;
    *)      echo "usage: $0 [build|run|test|deb|bench|cluster|valgrind [t/FILE.t ...]]" >&2
            exit 2 ;;
esac
