#!/usr/bin/env bash
# Make the local PostgreSQL cluster ready for churndesk's tests: running, loopback logins for a
# test role, and a password-checked role for the wrong-password test. Idempotent; run as root.
set -euo pipefail

version=$(ls /etc/postgresql | sort -V | tail -n 1)
hba=/etc/postgresql/$version/main/pg_hba.conf

if ! pg_isready -q -h 127.0.0.1 -p 5432; then
  echo "starting PostgreSQL $version"
  pg_ctlcluster --skip-systemctl-redirect "$version" main start
  for _ in $(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done
fi

psql_admin() { su postgres -c "PGOPTIONS='-c client_min_messages=warning' psql -v ON_ERROR_STOP=1 -qAt -p 5432 $*"; }

changed=0
# The wrong-password test needs one role whose loopback logins are checked; first match wins,
# so this line goes above any trust line.
if ! grep -q '^host all churndesk_pwtest 127.0.0.1/32 scram-sha-256' "$hba"; then
  sed -i '1i host all churndesk_pwtest 127.0.0.1/32 scram-sha-256' "$hba"
  changed=1
fi
# Test logins on loopback must not ask for a password.
if ! grep -Eq '^host\s+all\s+all\s+127\.0\.0\.1/32\s+trust' "$hba"; then
  echo 'host all all 127.0.0.1/32 trust' >> "$hba"
  changed=1
fi
if [ "$changed" = 1 ]; then
  psql_admin -c "'SELECT pg_reload_conf()'" >/dev/null
fi

psql_admin <<'SQL' -f - >/dev/null
DO $$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'churndesk_test') THEN
    CREATE ROLE churndesk_test LOGIN CREATEDB;
  END IF;
  -- A login that may write the tables but does not own them, as analysts' logins are.
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'churndesk_analyst') THEN
    CREATE ROLE churndesk_analyst LOGIN;
  END IF;
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'churndesk_pwtest') THEN
    CREATE ROLE churndesk_pwtest LOGIN PASSWORD 'right-password';
  END IF;
END $$;
SQL

# The test role's maintenance database; every test creates (and drops) its own database beside
# it. In CI (nothing else runs) databases left by an interrupted run are dropped first.
[ "${CI:-}" = "true" ] && for leftover in $(psql_admin -c "\"SELECT datname FROM pg_database WHERE datname LIKE 'churndesk_t\\_%'\""); do
  psql_admin -c "'DROP DATABASE IF EXISTS \"$leftover\" WITH (FORCE)'" >/dev/null
done
if [ -z "$(psql_admin -c "\"SELECT 1 FROM pg_database WHERE datname = 'churndesk_test'\"")" ]; then
  psql_admin -c "'CREATE DATABASE churndesk_test OWNER churndesk_test'" >/dev/null
fi
su postgres -c "PGOPTIONS='-c client_min_messages=warning' psql -qAt -p 5432 -d churndesk_test -c 'CREATE EXTENSION IF NOT EXISTS pg_trgm'" >/dev/null
echo "PostgreSQL ready: postgresql://churndesk_test@127.0.0.1:5432/churndesk_test"
