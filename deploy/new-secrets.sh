#!/bin/sh
# Writes the secrets compose.yaml mounts, one file each, into deploy/secrets/ (or DIR):
#   sh deploy/new-secrets.sh [DIR]
# Random passwords and API tokens; REDIS_URL and DATABASE_URL carry the Redis and PostgreSQL
# passwords. A file that exists is kept, so a rerun never changes a password a volume holds.
# The directory is its owner's alone; the files are readable by the containers' users.
set -eu

dir=${1:-$(dirname "$0")/secrets}
mkdir -p "$dir"
chmod 700 "$dir"

random() {
    # 24 random bytes as 48 hex digits: safe in a URL, a Redis config and basic auth.
    od -An -tx1 -N24 /dev/urandom | tr -d ' \n'
}

write() {
    if [ ! -s "$dir/$1" ]; then
        printf '%s\n' "$2" > "$dir/$1"
        chmod 644 "$dir/$1"
        echo "wrote $dir/$1"
    fi
}

write redis_password "$(random)"
write postgres_password "$(random)"
write redis_url "redis://:$(cat "$dir/redis_password")@redis:6379/0"
write database_url "postgresql://publishing:$(cat "$dir/postgres_password")@postgres:5432/publishing"
write api_tokens "admin:$(random),operator:$(random),reader:$(random)"
write flower_basic_auth "flower:$(random)"
write grafana_admin_password "$(random)"
