-- A read-only role for the dashboard. Created only where the migrating user may create roles
-- (the local stack grants that); on managed databases (Heroku) create a read-only credential
-- with the provider's tools and set CRYPTOSENT_DASHBOARD_DATABASE_URL to it.
do $$
begin
    if not exists (select from pg_roles where rolname = 'cryptosent_reader')
       and (select rolcreaterole or rolsuper from pg_roles where rolname = current_user) then
        create role cryptosent_reader nologin;
    end if;
    if exists (select from pg_roles where rolname = 'cryptosent_reader') then
        execute format('grant connect on database %I to cryptosent_reader', current_database());
        grant usage on schema public to cryptosent_reader;
        grant select on all tables in schema public to cryptosent_reader;
        alter default privileges in schema public grant select on tables to cryptosent_reader;
    end if;
end
$$;
