//! The console's static files, compiled into the binary and served under a path that carries
//! a digest of their content, so browsers may keep them for a year and still never run a stale
//! one after an upgrade.

use std::sync::OnceLock;

use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

/// htmx, vendored as published on npm (`htmx.org`, see `assets/README.md`).
const HTMX: &[u8] = include_bytes!("../assets/htmx-2.0.11.min.js");
/// htmx's Server-Sent Events extension, vendored as published on npm (`htmx-ext-sse`).
const HTMX_SSE: &[u8] = include_bytes!("../assets/htmx-ext-sse-2.2.4.min.js");
/// The console's stylesheet.
const CSS: &[u8] = include_bytes!("../assets/console.css");

/// One asset: its name in URLs and what it is.
struct Asset {
    name: String,
    content_type: &'static str,
    bytes: &'static [u8],
}

fn assets() -> &'static [Asset; 3] {
    static ASSETS: OnceLock<[Asset; 3]> = OnceLock::new();
    ASSETS.get_or_init(|| {
        [
            asset("htmx", "js", "text/javascript; charset=utf-8", HTMX),
            asset("console", "css", "text/css; charset=utf-8", CSS),
            asset(
                "htmx-ext-sse",
                "js",
                "text/javascript; charset=utf-8",
                HTMX_SSE,
            ),
        ]
    })
}

fn asset(stem: &str, ext: &str, content_type: &'static str, bytes: &'static [u8]) -> Asset {
    let digest = hex::encode(&Sha256::digest(bytes)[..8]);
    Asset {
        name: format!("{stem}-{digest}.{ext}"),
        content_type,
        bytes,
    }
}

/// The path of the vendored htmx.
pub fn htmx_path() -> String {
    format!("/console/assets/{}", assets()[0].name)
}

/// The path of the stylesheet.
pub fn css_path() -> String {
    format!("/console/assets/{}", assets()[1].name)
}

/// The path of htmx's Server-Sent Events extension.
pub fn htmx_sse_path() -> String {
    format!("/console/assets/{}", assets()[2].name)
}

/// `GET /console/assets/{name}`: an asset by its current name, cached for a year.
pub async fn serve(Path(name): Path<String>) -> Response {
    let Some(asset) = assets().iter().find(|a| a.name == name) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static(asset.content_type),
            ),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=31536000, immutable"),
            ),
        ],
        asset.bytes,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn asset_paths_carry_a_digest_of_the_content() {
        assert!(htmx_path().starts_with("/console/assets/htmx-"));
        assert!(css_path().ends_with(".css"));
        assert!(htmx_sse_path().starts_with("/console/assets/htmx-ext-sse-"));
        assert_ne!(
            asset("a", "js", "", b"one").name,
            asset("a", "js", "", b"two").name
        );
    }
}
