#!/usr/bin/env bash
# Resident memory of a saas-server on SQLite: at start, after registering 10
# tenants (10 password hashes), and after 120 logins 8 at a time.
# usage: login-rss.sh path/to/saas-server PORT
set -u
BIN=$1; PORT=$2
D=$(mktemp -d)
export DATA_DIR=$D SECRET_KEY=$(head -c 48 /dev/urandom | od -An -tx1 | tr -d ' \n') REGISTRATION_RATE_LIMIT=off LOGIN_RATE_LIMIT=off LOGIN_ADDRESS_RATE_LIMIT=off RUST_LOG=warn
$BIN serve --bind 127.0.0.1:$PORT > $D/log 2>&1 &
PID=$!
for i in $(seq 1 50); do curl -s -o /dev/null http://127.0.0.1:$PORT/healthz && break; sleep 0.2; done
rss() { grep -E "VmRSS|VmHWM" /proc/$PID/status | awk '{printf "%s %d MB  ", $1, $2/1024}'; echo; }
echo -n "start: "; rss
for i in $(seq 1 10); do
  curl -s -o /dev/null -w "%{http_code} " -X POST http://127.0.0.1:$PORT/api/register/ -H 'Content-Type: application/json' \
    -d "{\"company_name\":\"Co $i\",\"schema_name\":\"co$i\",\"domain_url\":\"co$i.localhost\",\"admin_username\":\"admin\",\"admin_email\":\"a@co$i.com\",\"admin_password\":\"securepassword123\",\"subscription_plan\":\"basic\"}"
done; echo
echo -n "after 10 registrations: "; rss
seq 1 120 | xargs -P 8 -I{} sh -c 'n=$(( {} % 10 + 1 )); curl -s -o /dev/null -w "%{http_code}\n" -X POST http://127.0.0.1:'$PORT'/api/token/ -H "Host: co$n.localhost" -H "Content-Type: application/json" -d "{\"username\":\"admin\",\"password\":\"securepassword123\"}"' | sort | uniq -c | tr '\n' ' '; echo
echo -n "after 120 logins (8 at a time): "; rss
kill -TERM $PID; wait $PID 2>/dev/null; rm -rf $D
