#!/usr/bin/env bash
# A throwaway IMAP server for the imap connector's tests: Debian's dovecot,
# run as the current user from one directory, IMAP over implicit TLS only.
#
#   imap-test-server.sh start DIR PORT [OWNER_PID]
#                                        writes DIR/dovecot.conf, a test CA and
#                                        a server certificate for 127.0.0.1,
#                                        a passwd-file with one user and the
#                                        maildir DIR/Maildir, starts dovecot
#                                        (daemonised) listening for IMAPS on
#                                        127.0.0.1:PORT, waits until it
#                                        accepts connections, then prints
#                                        key=value lines (ca, maildir, port,
#                                        user, password, log). With
#                                        OWNER_PID, dovecot is also stopped
#                                        once that process is gone (a test
#                                        run killed before its clean-up).
#   imap-test-server.sh stop DIR         stops the dovecot started in DIR.
#
# No plaintext IMAP listener is opened (the `imap` listener's port is 0) and
# `ssl = required`. Nothing is written outside DIR. Needs /usr/sbin/dovecot
# (Debian package dovecot-imapd) and openssl.
set -euo pipefail

DOVECOT=${DOVECOT:-/usr/sbin/dovecot}
TEST_USER=merchant
TEST_PASSWORD='correct horse battery staple'

die() {
    echo "imap-test-server: $*" >&2
    exit 1
}

usage() {
    die "usage: $0 start DIR PORT [OWNER_PID] | stop DIR"
}

make_certs() {
    local dir=$1
    local tls=$dir/tls
    mkdir -p "$tls"
    # A CA of its own, and a server certificate it signs: certificate
    # verifiers (webpki) refuse a CA certificate presented as the server's.
    openssl req -x509 -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 \
        -keyout "$tls/ca.key" -out "$tls/ca.pem" -days 30 \
        -subj "/CN=shophub imap test CA" \
        -addext "basicConstraints=critical,CA:TRUE" \
        -addext "keyUsage=critical,keyCertSign,cRLSign" >/dev/null 2>&1 ||
        die "openssl could not make the CA"
    openssl req -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 \
        -keyout "$tls/server.key" -out "$tls/server.csr" \
        -subj "/CN=127.0.0.1" >/dev/null 2>&1 ||
        die "openssl could not make the server key"
    cat >"$tls/server.ext" <<'EOF'
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1
EOF
    openssl x509 -req -in "$tls/server.csr" -CA "$tls/ca.pem" -CAkey "$tls/ca.key" \
        -CAcreateserial -out "$tls/server.pem" -days 30 \
        -extfile "$tls/server.ext" >/dev/null 2>&1 ||
        die "openssl could not sign the server certificate"
    chmod 600 "$tls"/*.key
}

write_config() {
    local dir=$1 port=$2
    local user group login_user mail_user mail_uid mail_gid
    user=$(id -un)
    group=$(id -gn)
    login_user=$user
    mail_user=$user
    if [[ $(id -u) -eq 0 ]]; then
        # dovecot refuses to run login processes as root and to give root
        # mail access: as root those run as unprivileged system users, who
        # get traversal on DIR and own the mail folders.
        login_user=nobody
        mail_user=nobody
        getent passwd dovenull >/dev/null && login_user=dovenull
        getent passwd dovecot >/dev/null && mail_user=dovecot
        chmod o+x "$dir"
    fi
    mail_uid=$(id -u "$mail_user")
    mail_gid=$(id -g "$mail_user")
    mkdir -p "$dir/run" "$dir/state" "$dir/home" \
        "$dir/Maildir/cur" "$dir/Maildir/new" "$dir/Maildir/tmp"
    if [[ $(id -u) -eq 0 ]]; then
        chown -R "$mail_uid:$mail_gid" "$dir/home" "$dir/Maildir"
    fi
    # passwd-file: user:password:uid:gid:gecos:home
    printf '%s:{PLAIN}%s:%s:%s::%s\n' "$TEST_USER" "$TEST_PASSWORD" \
        "$mail_uid" "$mail_gid" "$dir/home" >"$dir/passwd"
    chmod 600 "$dir/passwd"
    cat >"$dir/dovecot.conf" <<EOF
# Written by scripts/imap-test-server.sh for tests; not for production.
base_dir = $dir/run
state_dir = $dir/state
instance_name = shophub-imap-test-$port
log_path = $dir/dovecot.log
info_log_path = $dir/dovecot.log
debug_log_path = $dir/dovecot.log

protocols = imap
listen = 127.0.0.1
ssl = required
ssl_cert = <$dir/tls/server.pem
ssl_key = <$dir/tls/server.key
ssl_min_protocol = TLSv1.2
auth_mechanisms = plain login
disable_plaintext_auth = yes

# Everything runs as the user who started it (see write_config for root),
# nothing is chrooted.
default_internal_user = $user
default_internal_group = $group
default_login_user = $login_user
first_valid_uid = $mail_uid
last_valid_uid = $mail_uid
first_valid_gid = $mail_gid
last_valid_gid = $mail_gid
mail_location = maildir:$dir/Maildir

passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%u $dir/passwd
}
userdb {
  driver = passwd-file
  args = username_format=%u $dir/passwd
}

service imap-login {
  chroot =
  user = $login_user
  inet_listener imap {
    port = 0
  }
  inet_listener imaps {
    address = 127.0.0.1
    port = $port
    ssl = yes
  }
}
service anvil {
  chroot =
}
service stats {
  chroot =
}
EOF
}

wait_for_port() {
    local port=$1
    local i
    for i in $(seq 1 100); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            return 0
        fi
        sleep 0.1
    done
    return 1
}

start() {
    local dir=$1 port=$2 owner=${3:-}
    [[ -x $DOVECOT ]] || die "$DOVECOT is not installed (apt-get install dovecot-imapd)"
    command -v openssl >/dev/null || die "openssl is not installed"
    [[ $port =~ ^[0-9]+$ ]] || die "PORT must be a number"
    [[ -z $owner || $owner =~ ^[0-9]+$ ]] || die "OWNER_PID must be a number"
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    make_certs "$dir"
    write_config "$dir" "$port"
    # The daemon must not keep the caller's stdout/stderr open: a caller
    # reading them to the end would wait for as long as dovecot runs.
    "$DOVECOT" -c "$dir/dovecot.conf" </dev/null >>"$dir/dovecot.log" 2>&1 ||
        die "dovecot did not start; see $dir/dovecot.log"
    if ! wait_for_port "$port"; then
        cat "$dir/dovecot.log" >&2 2>/dev/null || true
        stop "$dir"
        die "dovecot is not listening on 127.0.0.1:$port"
    fi
    if [[ -n $owner ]]; then
        # A watcher, detached from the caller's output, that stops dovecot
        # when the owner is gone; it ends by itself once dovecot has stopped.
        (
            while kill -0 "$owner" 2>/dev/null && [[ -f $dir/run/master.pid ]]; do
                sleep 1
            done
            stop "$dir"
        ) </dev/null >/dev/null 2>&1 &
        disown
    fi
    echo "ca=$dir/tls/ca.pem"
    echo "maildir=$dir/Maildir"
    echo "port=$port"
    echo "user=$TEST_USER"
    echo "password=$TEST_PASSWORD"
    echo "log=$dir/dovecot.log"
}

stop() {
    local dir=$1
    [[ -f $dir/dovecot.conf ]] || return 0
    local pidfile=$dir/run/master.pid
    [[ -f $pidfile ]] || return 0
    local pid
    pid=$(cat "$pidfile")
    "$DOVECOT" -c "$dir/dovecot.conf" stop </dev/null >/dev/null 2>&1 ||
        kill "$pid" 2>/dev/null || true
    local i
    for i in $(seq 1 50); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.1
    done
    kill -9 "$pid" 2>/dev/null || true
}

case ${1:-} in
start)
    [[ $# -eq 3 || $# -eq 4 ]] || usage
    start "$2" "$3" "${4:-}"
    ;;
stop)
    [[ $# -eq 2 ]] || usage
    stop "$2"
    ;;
*) usage ;;
esac
