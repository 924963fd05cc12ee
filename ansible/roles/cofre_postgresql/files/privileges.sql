-- Makes the application role's rights on every table of the schema exactly the
-- wanted ones: grants what is missing, revokes what is extra. Run after migrations.
WITH rights(privilege) AS (
    VALUES ('SELECT'), ('INSERT'), ('UPDATE'), ('DELETE'), ('TRUNCATE'), ('REFERENCES'), ('TRIGGER')
), overrides AS (
    SELECT key AS tablename, ARRAY(SELECT json_array_elements_text(value)) AS privileges
      FROM json_each(:'overrides'::json)
), wanted AS (
    SELECT format('%I.%I', t.schemaname, t.tablename) AS qualified,
           coalesce(o.privileges, string_to_array(:'defaults', ',')) AS privileges
      FROM pg_tables t LEFT JOIN overrides o ON o.tablename = t.tablename
     WHERE t.schemaname = 'public'
)
SELECT format('GRANT %s ON %s TO %I', r.privilege, w.qualified, :'app')
  FROM wanted w CROSS JOIN rights r
 WHERE r.privilege = ANY (w.privileges) AND NOT has_table_privilege(:'app', w.qualified, r.privilege)
UNION ALL
SELECT format('REVOKE %s ON %s FROM %I', r.privilege, w.qualified, :'app')
  FROM wanted w CROSS JOIN rights r
 WHERE r.privilege <> ALL (w.privileges) AND has_table_privilege(:'app', w.qualified, r.privilege)
\gexec
-- Sequences behind serial ids.
SELECT format('GRANT USAGE, SELECT ON SEQUENCE %I.%I TO %I', schemaname, sequencename, :'app')
  FROM pg_sequences
 WHERE schemaname = 'public'
   AND NOT has_sequence_privilege(:'app', format('%I.%I', schemaname, sequencename), 'USAGE')
\gexec
