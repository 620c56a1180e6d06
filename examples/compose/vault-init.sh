#!/bin/sh
# One-shot set-up of the dev Vault for the demo: a KV secret for the app, the database
# secrets engine on the compose PostgreSQL with a role whose credentials rotate, and a
# token for outrider limited to those two paths, written to the vault-auth volume.
set -eu

vault kv put secret/demo-shop api_key=sk-demo-compose-4f8a1c9e7b2d region=eu-1

vault secrets list -format=json | grep -q '"database/"' || vault secrets enable database
vault write database/config/pg \
  plugin_name=postgresql-database-plugin \
  connection_url='postgresql://{{username}}:{{password}}@postgres:5432/postgres?sslmode=disable' \
  username=postgres password="$POSTGRES_PASSWORD" allowed_roles=shop
vault write database/roles/shop db_name=pg \
  creation_statements="CREATE ROLE \"{{name}}\" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}';" \
  default_ttl=2m max_ttl=10m

vault policy write outrider-demo - <<'POLICY'
path "secret/data/demo-shop" { capabilities = ["read"] }
path "database/creds/shop"   { capabilities = ["read"] }
path "sys/leases/renew"      { capabilities = ["update"] }
path "sys/leases/revoke"     { capabilities = ["update"] }
POLICY

umask 022
vault token create -policy=outrider-demo -period=24h -field=token > /vault/auth/token.tmp
mv /vault/auth/token.tmp /vault/auth/token
echo "vault-init: secret/demo-shop, database/creds/shop (TTL 2m, max 10m) and a token for outrider are ready"
