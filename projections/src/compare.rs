//! Whether two versions of a projection hold the same rows: a live version against a rebuild
//! of it, say, which must be equal row for row when both stand at the same checkpoint.

use sqlx::{AssertSqlSafe, PgPool};

use crate::error::ProjectionError;
use crate::projection::Projection;
use crate::versions::VersionRecord;

/// Rows of each side shown as examples of a difference.
const EXAMPLES: i64 = 3;

/// How one table differs between two versions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableDifference {
    /// The table.
    pub table: &'static str,
    /// Rows only the first version holds (counted with duplicates).
    pub only_first: i64,
    /// Rows only the second version holds.
    pub only_second: i64,
    /// A few of them, as JSON, the first version's first.
    pub examples: Vec<serde_json::Value>,
}

/// The tables of `projection` whose rows differ between versions `first` and `second`; empty
/// when they hold the same rows (in any order).
pub async fn differences(
    pool: &PgPool,
    projection: &dyn Projection,
    first: &VersionRecord,
    second: &VersionRecord,
) -> Result<Vec<TableDifference>, ProjectionError> {
    let mut differences = Vec::new();
    for table in projection.tables() {
        let (only_first, mut examples) =
            rows_only_in(pool, &first.schema_name, &second.schema_name, table).await?;
        let (only_second, more) =
            rows_only_in(pool, &second.schema_name, &first.schema_name, table).await?;
        if only_first + only_second > 0 {
            examples.extend(more);
            differences.push(TableDifference {
                table,
                only_first,
                only_second,
                examples,
            });
        }
    }
    Ok(differences)
}

/// How many rows of `table` schema `this` holds and `other` does not, with a few of them.
async fn rows_only_in(
    pool: &PgPool,
    this: &str,
    other: &str,
    table: &str,
) -> Result<(i64, Vec<serde_json::Value>), ProjectionError> {
    // Rows compared as JSON: every column type has an equality there (json columns do not).
    let sql = format!(
        "WITH unmatched AS (SELECT to_jsonb(t) AS row FROM {this}.{table} t
                            EXCEPT ALL SELECT to_jsonb(t) FROM {other}.{table} t)
         SELECT (SELECT count(*) FROM unmatched),
                coalesce((SELECT jsonb_agg(row) FROM (SELECT row FROM unmatched LIMIT $1) e),
                         '[]')"
    );
    let (count, examples): (i64, serde_json::Value) = sqlx::query_as(AssertSqlSafe(sql))
        .bind(EXAMPLES)
        .fetch_one(pool)
        .await?;
    let examples = match examples {
        serde_json::Value::Array(rows) => rows,
        _ => Vec::new(),
    };
    Ok((count, examples))
}
