-- The owner and application roles (no superuser, no role or database creation).
SELECT format('CREATE ROLE %I LOGIN', :'owner')
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'owner')
\gexec
SELECT format('CREATE ROLE %I LOGIN', :'app')
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'app')
\gexec
-- The database, owned by the owner role (which so owns its public schema).
SELECT format('CREATE DATABASE %I OWNER %I ENCODING %L TEMPLATE template0', :'db', :'owner', 'UTF8')
 WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'db')
\gexec
-- Only the two roles may connect.
SELECT format('REVOKE ALL ON DATABASE %I FROM PUBLIC', :'db')
  FROM pg_database d, aclexplode(coalesce(d.datacl, acldefault('d', d.datdba))) a
 WHERE d.datname = :'db' AND a.grantee = 0
 LIMIT 1
\gexec
SELECT format('GRANT CONNECT ON DATABASE %I TO %I', :'db', :'app')
 WHERE NOT has_database_privilege(:'app', :'db', 'CONNECT')
\gexec
