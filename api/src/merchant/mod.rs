//! The merchant's self-service reads, signed like `/payment/initiate`: its transactions (with a
//! CSV export), its wallet and statements, and its usage. Each answers the signing merchant's
//! own data only; another merchant's id is answered as unknown (404).
//!
//! Query parameters are read by name ([`QueryParams`]), so a bad one is refused as
//! `422 INVALID_FIELD` naming it, and an unknown one too (a misspelt filter never silently
//! widens an answer).

pub mod invoices;
pub mod transactions;
mod transactions_csv;
pub mod usage;
pub mod wallet;

use std::str::FromStr;

use axum::extract::Query;
use axum::http::{HeaderMap, Uri, header};
use chrono::{DateTime, Utc};

use crate::error::ApiError;

/// Rows per cursor step unless asked otherwise.
pub const DEFAULT_LIMIT: u32 = 50;
/// Most rows one cursor step returns.
pub const MAX_LIMIT: u32 = lightspeed_projections::pagination::MAX_PER_PAGE;

/// A request's query parameters, each read once by name.
#[derive(Debug)]
pub(crate) struct QueryParams(Vec<(String, String)>);

fn invalid(field: &str, detail: impl Into<String>) -> ApiError {
    ApiError::InvalidField {
        field: field.to_owned(),
        detail: detail.into(),
    }
}

impl QueryParams {
    /// The parameters of `uri`, refusing any not in `known` and any given twice.
    pub(crate) fn of(uri: &Uri, known: &[&str]) -> Result<Self, ApiError> {
        let Query(pairs) = Query::<Vec<(String, String)>>::try_from_uri(uri)
            .map_err(|rejection| invalid("query", rejection.body_text()))?;
        for (i, (name, _)) in pairs.iter().enumerate() {
            if !known.contains(&name.as_str()) {
                return Err(invalid(
                    name,
                    format!("unknown query parameter; known: {}", known.join(", ")),
                ));
            }
            if pairs[..i].iter().any(|(earlier, _)| earlier == name) {
                return Err(invalid(name, "given more than once"));
            }
        }
        Ok(Self(pairs))
    }

    /// The text of `name`, if given.
    pub(crate) fn text(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(given, _)| given == name)
            .map(|(_, value)| value.as_str())
    }

    /// `name` parsed, if given; `what` says what it must be when it does not parse.
    pub(crate) fn parsed<T: FromStr>(&self, name: &str, what: &str) -> Result<Option<T>, ApiError> {
        self.text(name)
            .map(|value| {
                value
                    .parse()
                    .map_err(|_| invalid(name, format!("must be {what}")))
            })
            .transpose()
    }

    /// `name` as an RFC 3339 instant, if given.
    pub(crate) fn instant(&self, name: &str) -> Result<Option<DateTime<Utc>>, ApiError> {
        self.text(name)
            .map(|value| {
                DateTime::parse_from_rfc3339(value)
                    .map(|at| at.with_timezone(&Utc))
                    .map_err(|_| {
                        invalid(
                            name,
                            "must be an RFC 3339 instant, e.g. 2026-11-01T00:00:00+05:30",
                        )
                    })
            })
            .transpose()
    }

    /// `limit`: 1 to [`MAX_LIMIT`], [`DEFAULT_LIMIT`] when absent.
    pub(crate) fn limit(&self) -> Result<u32, ApiError> {
        let what = format!("an integer from 1 to {MAX_LIMIT}");
        let limit = self.parsed::<u32>("limit", &what)?.unwrap_or(DEFAULT_LIMIT);
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(invalid("limit", format!("must be {what}")));
        }
        Ok(limit)
    }

    /// `cursor`, parsed as a previous step's `next_cursor`, if given.
    pub(crate) fn cursor<T: FromStr>(&self) -> Result<Option<T>, ApiError> {
        self.parsed("cursor", "a next_cursor from a previous answer")
    }
}

/// True when the caller asked for CSV.
pub(crate) fn wants_csv(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.to_ascii_lowercase().contains("text/csv"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(query: &str) -> Result<QueryParams, ApiError> {
        let uri: Uri = format!("/transactions?{query}").parse().expect("uri");
        QueryParams::of(&uri, &["limit", "cursor", "from"])
    }

    fn field_of(error: ApiError) -> String {
        match error {
            ApiError::InvalidField { field, .. } => field,
            other => panic!("not a field error: {other}"),
        }
    }

    #[test]
    fn unknown_and_repeated_parameters_are_named() {
        assert_eq!(
            field_of(params("stauts=paid").expect_err("refused")),
            "stauts"
        );
        assert_eq!(
            field_of(params("limit=1&limit=2").expect_err("refused")),
            "limit"
        );
    }

    #[test]
    fn limits_and_instants_are_checked_by_name() {
        assert_eq!(
            params("").expect("empty").limit().expect("default"),
            DEFAULT_LIMIT
        );
        assert_eq!(
            field_of(params("limit=0").expect("p").limit().expect_err("refused")),
            "limit"
        );
        assert_eq!(
            field_of(
                params("limit=201")
                    .expect("p")
                    .limit()
                    .expect_err("refused")
            ),
            "limit"
        );
        assert_eq!(
            field_of(
                params("from=yesterday")
                    .expect("p")
                    .instant("from")
                    .expect_err("refused")
            ),
            "from"
        );
        assert!(
            params("from=2026-11-01T00:00:00Z")
                .expect("p")
                .instant("from")
                .expect("ok")
                .is_some()
        );
    }
}
