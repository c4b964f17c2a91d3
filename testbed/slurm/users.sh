# testbed/slurm/users.sh - sourced by testbed/slurm.sh: the Unix users of a cluster (the job/token
# user SLURM_LAB_USER, the unprivileged slurmrestd user SLURM_LAB_REST_USER), created on the host
# and replicated into the chroot with the same ids.

ensure_user() {   # name [system]
    local u=$1 sys=${2:-}
    id "$u" >/dev/null 2>&1 && return 0
    if [ -n "$sys" ]; then
        useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin --user-group "$u"
    else
        useradd --create-home --shell /bin/bash --user-group "$u"
    fi
}

# replicate a host user/group into the chroot with identical ids
mirror_user_into_root() {
    local u=$1 uid gid g home
    uid=$(id -u "$u"); gid=$(id -g "$u"); g=$(id -gn "$u")
    home=$(getent passwd "$u" | cut -d: -f6)
    chroot "$ROOT" getent group "$g" >/dev/null 2>&1 || chroot "$ROOT" groupadd -o -g "$gid" "$g"
    if ! chroot "$ROOT" getent passwd "$u" >/dev/null 2>&1; then
        chroot "$ROOT" useradd -o -u "$uid" -g "$gid" -M -d "$home" -s /bin/sh "$u" 2>/dev/null
    fi
    if [ -n "$home" ] && [ "$home" != /nonexistent ] && [ ! -d "$ROOT$home" ]; then
        mkdir -p "$ROOT$home"; chown "$uid:$gid" "$ROOT$home"
    fi
}
