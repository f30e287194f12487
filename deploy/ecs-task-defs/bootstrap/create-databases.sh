# Run by the `create-databases` container of the one-off bootstrap task (deploy/ecs-task-defs/bootstrap.json)
# as `bash -c`. Idempotent: creates (or re-passwords) one login role and one database per service on RDS.
# PGHOST/PGUSER/PGPASSWORD come from the task (RDS-managed master secret); DB_PASSWORD_<db> from the
# per-service database secrets Terraform generated. Schema migrations are the services' own business.
set -euo pipefail
for db in $SERVICE_DATABASES; do
  pw_var="DB_PASSWORD_${db}"
  psql --no-psqlrc -v ON_ERROR_STOP=1 -v role="$db" -v pw="${!pw_var}" <<'SQL'
SELECT format('CREATE ROLE %I LOGIN', :'role')
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'role')\gexec
SELECT format('ALTER ROLE %I WITH LOGIN PASSWORD %L', :'role', :'pw')\gexec
SELECT format('GRANT %I TO CURRENT_USER', :'role')\gexec
SELECT format('CREATE DATABASE %I OWNER %I', :'role', :'role')
 WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'role')\gexec
SELECT format('REVOKE ALL ON DATABASE %I FROM PUBLIC', :'role')\gexec
SQL
  echo "database ${db} ready"
done
