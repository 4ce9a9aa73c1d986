//! Layering by module: SQL on a schema lives only in the crate that owns it, and every other
//! crate calls that crate's typed functions.
//!
//! | schema | owner |
//! |---|---|
//! | `ledger` (the log) | `eventstore` |
//! | `read` (the read models' views), `projections` (their versions) | `projections` |
//! | `ops` (measurements such as queue depth samples) | `monitoring` |
//! | `sandbox` (the sandbox PSP's orders and owed webhooks) | `sandbox` |
//! | `console` (console sessions' last-seen times) | `console` |
//!
//! The test walks the production sources of every crate (`<crate>/src/**/*.rs`) and of the
//! binary (`src/**/*.rs`) and fails, naming file and line, where a string literal outside the
//! owner names one of the schema's objects: for `ledger`, `projections`, `ops`, `sandbox` and `console`, a
//! table or function the migrations create (so a NATS subject such as
//! `ledger.payment.PaymentInitiated` is not mistaken for one); for `read`, any `read.<view>`.
//!
//! Exempt: tests (`<crate>/tests/`, `tests/`, `#[cfg(test)]` items), which set up and tamper
//! with the log on purpose; benches in `benches/`; doc comments. Nothing else: the benchmark
//! binaries under `src/bin/` are production sources like any other.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use proc_macro2::{Delimiter, Spacing, TokenStream, TokenTree};

/// Which crate owns each schema.
const OWNERS: [(&str, &str); 6] = [
    ("ledger", "eventstore"),
    ("read", "projections"),
    ("projections", "projections"),
    ("ops", "monitoring"),
    ("sandbox", "sandbox"),
    ("console", "console"),
];

/// SQL naming a schema's object, found outside the schema's owner.
#[derive(Debug)]
struct Trespass {
    file: String,
    line: usize,
    object: String,
    owner: &'static str,
}

#[test]
fn sql_on_a_schema_lives_only_in_the_crate_that_owns_it() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let objects = schema_objects(&root.join("migrations"));
    let mut trespasses = Vec::new();
    for (krate, file) in production_sources(root) {
        let relative = file
            .strip_prefix(root)
            .expect("under the workspace")
            .to_string_lossy()
            .replace('\\', "/");
        let text = std::fs::read_to_string(&file).expect("readable source");
        let tokens: TokenStream = text
            .parse()
            .unwrap_or_else(|e| panic!("{relative} does not lex: {e}"));
        for (line, literal) in string_literals(tokens) {
            for (offset, schema, object) in mentions(&literal, &objects) {
                let owner = owner_of(schema);
                if owner != krate {
                    trespasses.push(Trespass {
                        file: relative.clone(),
                        line: line + literal[..offset].matches('\n').count(),
                        object: format!("{schema}.{object}"),
                        owner,
                    });
                }
            }
        }
    }
    assert!(
        trespasses.is_empty(),
        "SQL on a schema outside the crate that owns it (give the caller a typed function in \
         the owner instead):\n{}",
        trespasses
            .iter()
            .map(|t| format!(
                "  {}:{}: {} belongs to {}",
                t.file, t.line, t.object, t.owner
            ))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[test]
fn the_walk_sees_every_crate_and_the_schemas_the_migrations_create() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let crates: BTreeSet<String> = production_sources(root)
        .into_iter()
        .map(|(krate, _)| krate)
        .collect();
    for krate in [
        "lightspeed",
        "api",
        "audit",
        "eventstore",
        "monitoring",
        "projections",
    ] {
        assert!(crates.contains(krate), "{krate} not walked: {crates:?}");
    }
    let objects = schema_objects(&root.join("migrations"));
    assert!(objects["ledger"].contains("events"), "{objects:?}");
    assert!(
        objects["ops"].contains("queue_depth_samples"),
        "{objects:?}"
    );
    let found = mentions(
        "SELECT 1 FROM ledger.events, read.transactions, ops.queue_depth_samples \
         WHERE subject = 'ledger.payment.PaymentInitiated' AND host = 'ops.example.com'",
        &objects,
    );
    let names: Vec<String> = found.iter().map(|(_, s, o)| format!("{s}.{o}")).collect();
    assert_eq!(
        names,
        [
            "ledger.events",
            "read.transactions",
            "ops.queue_depth_samples"
        ]
    );
}

fn owner_of(schema: &str) -> &'static str {
    OWNERS
        .iter()
        .find(|(owned, _)| *owned == schema)
        .map(|(_, owner)| *owner)
        .expect("every schema searched has an owner")
}

/// The tables, views and functions the migrations create in each schema but `read` (whose
/// views the projections create at run time).
fn schema_objects(migrations: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mut objects: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for entry in std::fs::read_dir(migrations).expect("migrations folder") {
        let path = entry.expect("migration").path();
        if path.extension().is_none_or(|ext| ext != "sql") {
            continue;
        }
        let sql = std::fs::read_to_string(&path).expect("readable migration");
        for (schema, _) in OWNERS.iter().filter(|(schema, _)| *schema != "read") {
            for (_, object) in qualified_names(&sql, schema) {
                objects
                    .entry((*schema).to_owned())
                    .or_default()
                    .insert(object.to_owned());
            }
        }
    }
    objects
}

/// Where `text` names an object of a schema, as (byte offset, schema, object).
fn mentions<'a>(
    text: &'a str,
    objects: &BTreeMap<String, BTreeSet<String>>,
) -> Vec<(usize, &'static str, &'a str)> {
    let mut found = Vec::new();
    for (schema, _) in OWNERS {
        for (offset, object) in qualified_names(text, schema) {
            let known = schema == "read"
                || objects
                    .get(schema)
                    .is_some_and(|names| names.contains(object));
            if known {
                found.push((offset, schema, object));
            }
        }
    }
    found.sort_unstable();
    found
}

/// Every `<schema>.<identifier>` in `text` where the schema starts a word, with its offset.
fn qualified_names<'a>(text: &'a str, schema: &str) -> Vec<(usize, &'a str)> {
    let prefix = format!("{schema}.");
    let is_word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    text.match_indices(&prefix)
        .filter(|(at, _)| !text[..*at].ends_with(|c: char| is_word(c) || c == '.'))
        .filter_map(|(at, _)| {
            let rest = &text[at + prefix.len()..];
            let end = rest.find(|c: char| !is_word(c)).unwrap_or(rest.len());
            let object = &rest[..end];
            object
                .starts_with(|c: char| c.is_ascii_lowercase())
                .then_some((at, object))
        })
        .collect()
}

/// Every production source file with its crate (`lightspeed` for the binary's `src/`).
fn production_sources(root: &Path) -> Vec<(String, PathBuf)> {
    let mut sources = Vec::new();
    collect_rust(&root.join("src"), &mut |file| {
        sources.push(("lightspeed".to_owned(), file))
    });
    for entry in std::fs::read_dir(root).expect("workspace root") {
        let folder = entry.expect("entry").path();
        if !folder.join("Cargo.toml").is_file() || !folder.join("src").is_dir() {
            continue;
        }
        let krate = folder
            .file_name()
            .expect("named folder")
            .to_string_lossy()
            .into_owned();
        collect_rust(&folder.join("src"), &mut |file| {
            sources.push((krate.clone(), file))
        });
    }
    sources.sort();
    sources
}

fn collect_rust(folder: &Path, found: &mut impl FnMut(PathBuf)) {
    let Ok(entries) = std::fs::read_dir(folder) else {
        return;
    };
    for entry in entries {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            collect_rust(&path, found);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            found(path);
        }
    }
}

/// The string literals of a file with the line each starts on, leaving out doc comments and
/// `#[cfg(test)]` items.
fn string_literals(tokens: TokenStream) -> Vec<(usize, String)> {
    let mut literals = Vec::new();
    let mut tokens = tokens.into_iter().peekable();
    while let Some(token) = tokens.next() {
        match token {
            TokenTree::Punct(punct) if punct.as_char() == '#' => {
                if let Some(TokenTree::Punct(bang)) = tokens.peek()
                    && bang.as_char() == '!'
                    && bang.spacing() == Spacing::Alone
                {
                    tokens.next();
                }
                let Some(TokenTree::Group(attribute)) =
                    tokens.next_if(|next| matches!(next, TokenTree::Group(_)))
                else {
                    continue;
                };
                match attribute_kind(&attribute.stream()) {
                    Attribute::Doc => {}
                    Attribute::CfgTest => skip_item(&mut tokens),
                    Attribute::Other => literals.extend(string_literals(attribute.stream())),
                }
            }
            TokenTree::Group(group) => literals.extend(string_literals(group.stream())),
            TokenTree::Literal(literal) => {
                let text = literal.to_string();
                if text.starts_with('"') || text.starts_with("r\"") || text.starts_with("r#") {
                    literals.push((literal.span().start().line, text));
                }
            }
            TokenTree::Ident(_) | TokenTree::Punct(_) => {}
        }
    }
    literals
}

enum Attribute {
    Doc,
    CfgTest,
    Other,
}

fn attribute_kind(attribute: &TokenStream) -> Attribute {
    let mut parts = attribute.clone().into_iter();
    match (parts.next(), parts.next()) {
        (Some(TokenTree::Ident(name)), _) if name == "doc" => Attribute::Doc,
        (Some(TokenTree::Ident(name)), Some(TokenTree::Group(condition)))
            if name == "cfg"
                && condition.delimiter() == Delimiter::Parenthesis
                && condition.stream().to_string() == "test" =>
        {
            Attribute::CfgTest
        }
        _ => Attribute::Other,
    }
}

/// Skips the item after a `#[cfg(test)]`: up to its body in braces, or its closing `;`.
fn skip_item(tokens: &mut std::iter::Peekable<impl Iterator<Item = TokenTree>>) {
    for token in tokens.by_ref() {
        match token {
            TokenTree::Group(group) if group.delimiter() == Delimiter::Brace => return,
            TokenTree::Punct(punct) if punct.as_char() == ';' => return,
            _ => {}
        }
    }
}
