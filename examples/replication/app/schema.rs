//! The demo's tables. Region databases hold the region models (teams, members,
//! audit events) and caches of control data; the control database holds the
//! control models (users, API tokens) and mappings of region data.

diesel::table! { teams (id) { id -> BigInt, organization_id -> BigInt, name -> Text } }
diesel::table! { organization_members (id) { id -> BigInt, organization_id -> BigInt, user_id -> BigInt, role -> Text } }
diesel::table! { audit_log_events (id) { id -> BigInt, organization_id -> BigInt, actor_user_id -> BigInt, event -> Text } }
diesel::table! { user_cache (id) { id -> BigInt, email -> Text, name -> Text } }
diesel::table! { api_token_cache (id) { id -> BigInt, user_id -> BigInt, label -> Text } }

diesel::table! { users (id) { id -> BigInt, email -> Text, name -> Text, regions -> Text } }
diesel::table! { api_tokens (id) { id -> BigInt, user_id -> BigInt, label -> Text, regions -> Text } }
diesel::table! {
    team_mapping (region_name, team_id) { region_name -> Text, team_id -> BigInt, organization_id -> BigInt, name -> Text }
}
diesel::table! {
    organization_member_mapping (region_name, member_id) {
        region_name -> Text, member_id -> BigInt, organization_id -> BigInt, user_id -> BigInt, role -> Text,
    }
}
diesel::table! {
    audit_log_entries (region_name, event_id) {
        region_name -> Text, event_id -> BigInt, organization_id -> BigInt, actor_user_id -> BigInt, event -> Text,
    }
}

/// Same SQL on SQLite and PostgreSQL.
pub const REGION_DDL: &str = "
    CREATE TABLE IF NOT EXISTS teams (id BIGINT PRIMARY KEY, organization_id BIGINT NOT NULL, name TEXT NOT NULL);
    CREATE TABLE IF NOT EXISTS organization_members (
        id BIGINT PRIMARY KEY, organization_id BIGINT NOT NULL, user_id BIGINT NOT NULL, role TEXT NOT NULL);
    CREATE TABLE IF NOT EXISTS audit_log_events (
        id BIGINT PRIMARY KEY, organization_id BIGINT NOT NULL, actor_user_id BIGINT NOT NULL, event TEXT NOT NULL);
    CREATE TABLE IF NOT EXISTS user_cache (id BIGINT PRIMARY KEY, email TEXT NOT NULL, name TEXT NOT NULL);
    CREATE TABLE IF NOT EXISTS api_token_cache (id BIGINT PRIMARY KEY, user_id BIGINT NOT NULL, label TEXT NOT NULL);
";

/// Same SQL on SQLite and PostgreSQL.
pub const CONTROL_DDL: &str = "
    CREATE TABLE IF NOT EXISTS users (
        id BIGINT PRIMARY KEY, email TEXT NOT NULL, name TEXT NOT NULL, regions TEXT NOT NULL);
    CREATE TABLE IF NOT EXISTS api_tokens (
        id BIGINT PRIMARY KEY, user_id BIGINT NOT NULL, label TEXT NOT NULL, regions TEXT NOT NULL);
    CREATE TABLE IF NOT EXISTS team_mapping (
        region_name TEXT NOT NULL, team_id BIGINT NOT NULL, organization_id BIGINT NOT NULL, name TEXT NOT NULL,
        PRIMARY KEY (region_name, team_id));
    CREATE TABLE IF NOT EXISTS organization_member_mapping (
        region_name TEXT NOT NULL, member_id BIGINT NOT NULL, organization_id BIGINT NOT NULL,
        user_id BIGINT NOT NULL, role TEXT NOT NULL, PRIMARY KEY (region_name, member_id));
    CREATE TABLE IF NOT EXISTS audit_log_entries (
        region_name TEXT NOT NULL, event_id BIGINT NOT NULL, organization_id BIGINT NOT NULL,
        actor_user_id BIGINT NOT NULL, event TEXT NOT NULL, PRIMARY KEY (region_name, event_id));
";
