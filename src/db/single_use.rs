//! Single-use links stored by the SHA-256 of their token (setup links, password resets):
//! a row is live while unused and unexpired, and using it is one conditional UPDATE.

/// Defines `find_live` and `consume` for `$table`, keyed by `token_hash`, with `used_at`
/// and `expires_at` columns, whose rows load as `$row`.
macro_rules! single_use_links {
    ($table:ident, $row:ty) => {
        /// A link that is unused and not expired.
        pub fn find_live(
            conn: &mut $crate::db::DbConnection,
            token_hash: &str,
            now: chrono::NaiveDateTime,
        ) -> diesel::QueryResult<Option<$row>> {
            use diesel::prelude::*;
            $table::table
                .find(token_hash)
                .filter($table::used_at.is_null())
                .filter($table::expires_at.gt(now))
                .select(<$row>::as_select())
                .first(conn)
                .optional()
        }

        /// Consumes the link with one conditional UPDATE: of two requests racing with the
        /// same token, exactly one sees `true`.
        pub fn consume(
            conn: &mut $crate::db::DbConnection,
            token_hash: &str,
            now: chrono::NaiveDateTime,
        ) -> diesel::QueryResult<bool> {
            use diesel::prelude::*;
            let n = diesel::update(
                $table::table
                    .find(token_hash)
                    .filter($table::used_at.is_null())
                    .filter($table::expires_at.gt(now)),
            )
            .set($table::used_at.eq(Some(now)))
            .execute(conn)?;
            Ok(n == 1)
        }
    };
}

pub(crate) use single_use_links;
