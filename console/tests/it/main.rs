//! The console's tests: pages in a real headless Chromium, and forged requests over HTTP.

mod access;
mod changes;
mod harness;
mod live;
mod more_pages;
mod pages;
mod sessions;
