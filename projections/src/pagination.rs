//! Pages and cursors for the read functions.

use serde::{Deserialize, Serialize};
use sqlx::types::Json;

use crate::error::ProjectionError;

/// Most rows one page or cursor step returns.
pub const MAX_PER_PAGE: u32 = 200;

/// A numbered page: `page` from 1, `per_page` from 1 to [`MAX_PER_PAGE`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PageRequest {
    /// Which page, from 1.
    pub page: u32,
    /// Rows per page.
    pub per_page: u32,
}

impl Default for PageRequest {
    /// The first page of 50.
    fn default() -> Self {
        Self {
            page: 1,
            per_page: 50,
        }
    }
}

impl PageRequest {
    /// `LIMIT` and `OFFSET`, or why the page cannot be served.
    pub(crate) fn limit_offset(&self) -> Result<(i64, i64), ProjectionError> {
        if self.page == 0 {
            return Err(ProjectionError::InvalidQuery("page starts at 1".into()));
        }
        let per_page = checked_limit(self.per_page)?;
        Ok((per_page, (i64::from(self.page) - 1) * per_page))
    }
}

/// Checks a page size: 1 to [`MAX_PER_PAGE`].
pub(crate) fn checked_limit(limit: u32) -> Result<i64, ProjectionError> {
    if limit == 0 || limit > MAX_PER_PAGE {
        return Err(ProjectionError::InvalidQuery(format!(
            "per_page must be between 1 and {MAX_PER_PAGE}"
        )));
    }
    Ok(i64::from(limit))
}

/// One numbered page of rows, with the number of rows matching in all.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Page<T> {
    /// The rows.
    pub items: Vec<T>,
    /// Which page.
    pub page: u32,
    /// Rows per page.
    pub per_page: u32,
    /// Rows matching the filter, on all pages.
    pub total: i64,
}

/// One step through rows in a stable order; pass `next_cursor` back for the next step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CursorPage<T> {
    /// The rows.
    pub items: Vec<T>,
    /// The cursor of the next step; `None` when there are no more rows.
    pub next_cursor: Option<String>,
}

impl<T> CursorPage<T> {
    /// Cuts a fetch of `limit + 1` rows down to `limit`, with a cursor taken from the last row
    /// kept when there are more.
    pub(crate) fn from_fetch(
        mut rows: Vec<T>,
        limit: i64,
        cursor_of: impl Fn(&T) -> String,
    ) -> Self {
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        let more = rows.len() > limit;
        rows.truncate(limit);
        let next_cursor = if more {
            rows.last().map(cursor_of)
        } else {
            None
        };
        Self {
            items: rows,
            next_cursor,
        }
    }
}

/// Escapes `%`, `_` and `\` so a search text matches literally inside `ILIKE '%…%'`.
pub(crate) fn escape_like(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

/// A page from rows fetched with `count(*) OVER ()`.
pub(crate) fn into_page<T>(rows: Vec<(Json<T>, i64)>, page: PageRequest) -> Page<T> {
    let total = rows.first().map_or(0, |(_, total)| *total);
    Page {
        items: rows.into_iter().map(|(Json(row), _)| row).collect(),
        page: page.page,
        per_page: page.per_page,
        total,
    }
}
