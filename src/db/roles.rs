use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::schema::roles;
use super::{DbConnection, new_id, now};
use crate::domain::roles::{BUILTIN_ROLES, PermissionSet};

#[derive(Debug, Clone, Queryable, Selectable, Identifiable)]
#[diesel(table_name = roles)]
pub struct Role {
    pub id: String,
    pub org_id: String,
    pub key: String,
    pub name: String,
    pub permissions: String,
    pub rank: i64,
    pub builtin: bool,
    pub created_at: NaiveDateTime,
}

impl Role {
    pub fn permission_set(&self) -> PermissionSet {
        PermissionSet::parse_lenient(&self.permissions)
    }
}

#[derive(Insertable)]
#[diesel(table_name = roles)]
struct NewRole<'a> {
    id: &'a str,
    org_id: &'a str,
    key: &'a str,
    name: &'a str,
    permissions: &'a str,
    rank: i64,
    builtin: bool,
    created_at: NaiveDateTime,
}

pub fn seed_builtin(conn: &mut DbConnection, org_id: &str) -> QueryResult<()> {
    for builtin in BUILTIN_ROLES {
        let id = new_id();
        let permissions = builtin.permissions().to_string();
        diesel::insert_into(roles::table)
            .values(NewRole {
                id: &id,
                org_id,
                key: builtin.key,
                name: builtin.name,
                permissions: &permissions,
                rank: builtin.rank,
                builtin: true,
                created_at: now(),
            })
            .execute(conn)?;
    }
    Ok(())
}

pub fn list(conn: &mut DbConnection, org_id: &str) -> QueryResult<Vec<Role>> {
    roles::table
        .filter(roles::org_id.eq(org_id))
        .order((roles::rank.desc(), roles::name.asc()))
        .select(Role::as_select())
        .load(conn)
}

pub fn find(conn: &mut DbConnection, org_id: &str, id: &str) -> QueryResult<Option<Role>> {
    roles::table
        .filter(roles::org_id.eq(org_id))
        .filter(roles::id.eq(id))
        .select(Role::as_select())
        .first(conn)
        .optional()
}

pub fn find_by_key(conn: &mut DbConnection, org_id: &str, key: &str) -> QueryResult<Option<Role>> {
    roles::table
        .filter(roles::org_id.eq(org_id))
        .filter(roles::key.eq(key))
        .select(Role::as_select())
        .first(conn)
        .optional()
}
