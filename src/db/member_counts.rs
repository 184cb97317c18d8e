//! Exact member counts per organization and membership status, so the Users tab header
//! reads two numbers instead of counting the organization.
//!
//! Only `db::memberships` writes them: each function there that inserts, deletes or
//! changes the status of a membership row calls [`adjust`] in the same transaction, so
//! no caller can change a membership and forget its count.

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};

use super::DbConnection;
use super::schema::member_counts;

/// An organization's members by membership status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StatusCounts {
    pub active: i64,
    pub inactive: i64,
}

impl StatusCounts {
    /// Every member, whatever their status.
    pub fn members(&self) -> i64 {
        self.active + self.inactive
    }
}

/// The organization's counts: one primary-key lookup, whatever its size.
pub fn by_status(conn: &mut DbConnection, org_id: &str) -> QueryResult<StatusCounts> {
    let rows: Vec<(String, i64)> = super::on_backend!(conn, |c| member_counts::table
        .filter(member_counts::org_id.eq(org_id))
        .select((member_counts::status, member_counts::n))
        .load(c))?;
    let mut counts = StatusCounts::default();
    for (status, n) in rows {
        match status.as_str() {
            "active" => counts.active = n,
            "inactive" => counts.inactive = n,
            _ => {}
        }
    }
    Ok(counts)
}

/// Members of every organization together: a sum over the counters, a row or two per
/// organization.
pub fn all_organizations(conn: &mut DbConnection) -> QueryResult<i64> {
    #[derive(QueryableByName)]
    struct Total {
        #[diesel(sql_type = BigInt)]
        n: i64,
    }
    diesel::sql_query("SELECT CAST(COALESCE(SUM(n), 0) AS BIGINT) AS n FROM member_counts")
        .get_result::<Total>(conn)
        .map(|t| t.n)
}

/// Adds each `(status, delta)` to the organization's count, creating the row at need.
/// A relative upsert (`n = n + delta`), never a value read and written back: on
/// PostgreSQL two transactions adjusting the same row wait for each other's row lock and
/// both changes count; on SQLite the caller's write transaction holds the database.
/// Rows are adjusted in status order, so two transactions never wait on each other's
/// rows the other way round. Call inside the transaction that changes the memberships.
pub(super) fn adjust(
    conn: &mut DbConnection,
    org_id: &str,
    deltas: &[(&str, i64)],
) -> QueryResult<()> {
    const UPSERT: &str = "INSERT INTO member_counts (org_id, status, n) VALUES ($1, $2, $3) \
         ON CONFLICT (org_id, status) DO UPDATE SET n = member_counts.n + excluded.n";
    let mut deltas: Vec<(&str, i64)> = deltas.iter().copied().filter(|(_, d)| *d != 0).collect();
    deltas.sort_unstable();
    for (status, delta) in deltas {
        // `ON CONFLICT` does not compile on the multi connection: each backend gets it raw.
        match conn {
            DbConnection::Postgresql(pg) => diesel::sql_query(UPSERT)
                .bind::<Text, _>(org_id)
                .bind::<Text, _>(status)
                .bind::<BigInt, _>(delta)
                .execute(pg)?,
            DbConnection::Sqlite(lite) => diesel::sql_query(UPSERT.replace('$', "?"))
                .bind::<Text, _>(org_id)
                .bind::<Text, _>(status)
                .bind::<BigInt, _>(delta)
                .execute(lite)?,
        };
    }
    Ok(())
}

#[cfg(test)]
mod tests {

    use super::*;
    use crate::db::{memberships, users};

    /// What the counters stand for: `COUNT(*)` of the organization's memberships.
    fn counted(conn: &mut DbConnection, org_id: &str) -> StatusCounts {
        use crate::db::schema::memberships as m;
        let count = |conn: &mut DbConnection, status: &str| -> i64 {
            m::table
                .filter(m::org_id.eq(org_id))
                .filter(m::status.eq(status))
                .count()
                .get_result(conn)
                .unwrap()
        };
        StatusCounts {
            active: count(conn, "active"),
            inactive: count(conn, "inactive"),
        }
    }

    fn account(conn: &mut DbConnection, email: &str) -> users::User {
        let id = crate::db::new_id();
        users::insert(
            conn,
            &users::NewUser {
                id: &id,
                email,
                first_name: "Test",
                last_name: "Person",
                password_hash: None,
                platform_role: "none",
                status: "active",
                auth_method: "password",
                created_at: crate::db::now(),
                last_active_at: None,
            },
        )
        .unwrap();
        users::find(conn, &id).unwrap().unwrap()
    }

    #[test]
    fn every_membership_write_moves_the_counts() {
        let db = crate::domain::testing::with_admin("x");
        let conn = &mut db.pool.get().unwrap();
        let org = db.admin.org.id.clone();
        let role = crate::db::roles::find_by_key(conn, &org, "member")
            .unwrap()
            .unwrap()
            .id;
        let at = |active, inactive| StatusCounts { active, inactive };
        assert_eq!(by_status(conn, &org).unwrap(), at(1, 0), "the admin");

        let people: Vec<users::User> = (0..5)
            .map(|i| account(conn, &format!("p{i}@example.com")))
            .collect();
        for p in &people {
            memberships::insert(conn, &org, p, &role).unwrap();
        }
        assert_eq!(by_status(conn, &org).unwrap(), at(6, 0));

        assert_eq!(
            memberships::set_status(conn, &org, &people[0].id, "inactive").unwrap(),
            1
        );
        assert_eq!(
            memberships::set_status(conn, &org, &people[1].id, "inactive").unwrap(),
            1
        );
        // Already inactive: nothing changes, nothing moves.
        assert_eq!(
            memberships::set_status(conn, &org, &people[1].id, "inactive").unwrap(),
            0
        );
        // Not a member: nothing to move either.
        assert_eq!(
            memberships::set_status(conn, &org, "nobody", "active").unwrap(),
            0
        );
        assert_eq!(by_status(conn, &org).unwrap(), at(4, 2));

        assert_eq!(
            memberships::set_status(conn, &org, &people[0].id, "active").unwrap(),
            1
        );
        assert_eq!(by_status(conn, &org).unwrap(), at(5, 1));

        assert_eq!(
            memberships::delete(conn, &org, &people[1].id).unwrap(),
            1,
            "inactive"
        );
        assert_eq!(
            memberships::delete(conn, &org, &people[2].id).unwrap(),
            1,
            "active"
        );
        assert_eq!(
            memberships::delete(conn, &org, &people[2].id).unwrap(),
            0,
            "gone"
        );
        assert_eq!(by_status(conn, &org).unwrap(), at(4, 0));

        assert!(memberships::set_status(conn, &org, &people[3].id, "suspended").is_err());

        let more: Vec<users::User> = (0..3)
            .map(|i| account(conn, &format!("q{i}@example.com")))
            .collect();
        let rows: Vec<memberships::NewMembership> = more
            .iter()
            .enumerate()
            .map(|(i, u)| memberships::NewMembership {
                org_id: &org,
                user_id: &u.id,
                role_id: &role,
                status: if i == 0 { "inactive" } else { "active" },
                email: &u.email,
                sort_name: "test person",
                created_at: crate::db::now(),
                last_active_at: crate::db::never(),
                auth_method: &u.auth_method,
            })
            .collect();
        memberships::insert_many(conn, &rows).unwrap();
        assert_eq!(by_status(conn, &org).unwrap(), at(6, 1));
        assert_eq!(by_status(conn, &org).unwrap(), counted(conn, &org));
    }

    #[test]
    fn a_failed_transaction_leaves_the_counts_as_they_were() {
        let db = crate::domain::testing::with_admin("x");
        let conn = &mut db.pool.get().unwrap();
        let org = db.admin.org.id.clone();
        let admin = db.admin.user.id.clone();
        let result: QueryResult<()> = crate::db::write_tx(conn, |conn| {
            memberships::set_status(conn, &org, &admin, "inactive")?;
            Err(diesel::result::Error::RollbackTransaction)
        });
        assert!(result.is_err());
        assert_eq!(
            by_status(conn, &org).unwrap(),
            StatusCounts {
                active: 1,
                inactive: 0
            }
        );
    }

    #[test]
    fn the_migration_counts_the_members_already_there() {
        let db = crate::domain::testing::with_admin("x");
        let conn = &mut db.pool.get().unwrap();
        let org = db.admin.org.id.clone();
        let role = crate::db::roles::find_by_key(conn, &org, "member")
            .unwrap()
            .unwrap()
            .id;
        for i in 0..4 {
            let p = account(conn, &format!("p{i}@example.com"));
            memberships::insert(conn, &org, &p, &role).unwrap();
            if i % 2 == 0 {
                memberships::set_status(conn, &org, &p.id, "inactive").unwrap();
            }
        }
        // Back to before the counters (and any migration after them), then forward again:
        // the migration fills the table from the memberships.
        crate::db::migrate_again_from(conn, "20261201000002");
        assert_eq!(
            by_status(conn, &org).unwrap(),
            StatusCounts {
                active: 3,
                inactive: 2
            }
        );
        assert_eq!(by_status(conn, &org).unwrap(), counted(conn, &org));
    }
}
