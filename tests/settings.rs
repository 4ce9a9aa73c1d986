//! The binary's settings as an operator meets them: every environment variable has a flag and a
//! `--help` line, a secret of our own choosing shorter than 32 bytes stops the process before
//! it starts, and `admin token` mints tokens for allow-listed emails without a database.

use std::process::{Command, Output};

/// The variables every setting is read from.
const SETTINGS: &[&str] = &[
    "DATABASE_URL",
    "DATABASE_MAX_CONNECTIONS",
    "NATS_URL",
    "NATS_STREAM",
    "NATS_SUBJECT_PREFIX",
    "PUBLIC_URL",
    "ENCRYPTION_KEY",
    "LOG_FORMAT",
    "RUST_LOG",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_SERVICE_NAME",
    "WA_PROVIDER",
    "WA_API_KEY",
    "RAZORPAYX_KEY_ID",
    "RAZORPAYX_WEBHOOK_SECRET",
    "PAYOUT_TIME_IST",
    "LISTEN_ADDR",
    "BODY_LIMIT_BYTES",
    "ADMIN_ORIGINS",
    "WEBHOOK_IP_ALLOWLIST",
    "SANDBOX_RETENTION_DAYS",
    "SLACK_WEBHOOK_URL",
    "ADMIN_JWT_SECRET",
    "ADMIN_EMAILS",
    "CONSOLE_IDLE_MINUTES",
    "CONSOLE_ABSOLUTE_HOURS",
    "SMTP_HOST",
    "SMTP_PORT",
    "SMTP_USERNAME",
    "SMTP_PASSWORD",
    "SMTP_FROM",
    "SMTP_STARTTLS",
];

const SECRET: &str = "0123456789abcdef0123456789abcdef";

/// Runs the binary with `args` and only the given variables (nothing from the test's own
/// environment leaks in).
fn lightspeed(args: &[&str], vars: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_lightspeed"));
    command.args(args).env_clear();
    for (name, value) in vars {
        command.env(name, value);
    }
    command.output().expect("run lightspeed")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn every_environment_variable_has_a_flag_and_a_help_line() {
    // Shared settings are on the command itself, the server's on `serve`.
    let help = text(&lightspeed(&["--help"], &[]).stdout)
        + &text(&lightspeed(&["serve", "--help"], &[]).stdout);
    for name in SETTINGS {
        // Two flags are named for what they set rather than after their variable.
        let flag = match *name {
            "RUST_LOG" => "--log-filter".to_owned(),
            "LISTEN_ADDR" => "--listen".to_owned(),
            other => format!("--{}", other.to_ascii_lowercase().replace('_', "-")),
        };
        let documented = help
            .lines()
            .any(|line| line.contains(&format!("[env: {name}")));
        assert!(documented, "{name} has no --help line:\n{help}");
        let has_flag =
            help.contains(&flag) || (*name == "RUST_LOG" && help.contains("--log-filter"));
        assert!(has_flag, "{name} has no flag:\n{help}");
    }
    assert!(!help.contains(SECRET));
}

#[test]
fn admin_token_is_minted_for_an_allow_listed_email_without_a_database() {
    let vars = [
        ("ADMIN_JWT_SECRET", SECRET),
        ("ADMIN_EMAILS", "ops@example.com"),
    ];
    let minted = lightspeed(&["admin", "token", "--email", "Ops@Example.com"], &vars);
    assert!(minted.status.success(), "{}", text(&minted.stderr));
    assert_eq!(text(&minted.stdout).trim().split('.').count(), 3, "a JWT");

    let role = lightspeed(
        &[
            "admin",
            "token",
            "--email",
            "ops@example.com",
            "--role",
            "root",
        ],
        &vars,
    );
    assert!(!role.status.success());
    assert!(
        text(&role.stderr).contains("unknown role"),
        "{}",
        text(&role.stderr)
    );
}

#[test]
fn a_secret_shorter_than_32_bytes_is_refused_at_start() {
    let short = [
        ("ADMIN_JWT_SECRET", "too-short"),
        ("ADMIN_EMAILS", "ops@example.com"),
    ];
    let token = lightspeed(&["admin", "token", "--email", "ops@example.com"], &short);
    assert!(!token.status.success());
    assert!(
        text(&token.stderr).contains("at least 32 bytes"),
        "{}",
        text(&token.stderr)
    );
    // `serve` stops before connecting to anything (nothing listens on these addresses).
    let unreachable = [
        ("DATABASE_URL", "postgres://postgres@127.0.0.1:9/none"),
        ("NATS_URL", "nats://127.0.0.1:9"),
    ];
    for secret in [
        ("ADMIN_JWT_SECRET", "too-short"),
        ("RAZORPAYX_WEBHOOK_SECRET", "short"),
    ] {
        let mut vars = unreachable.to_vec();
        vars.push(secret);
        vars.push(("ADMIN_EMAILS", "ops@example.com"));
        let serve = lightspeed(&["serve"], &vars);
        let stderr = text(&serve.stderr);
        assert!(!serve.status.success());
        assert!(stderr.contains(secret.0), "{stderr}");
        assert!(stderr.contains("32 bytes"), "{stderr}");
        assert!(
            !stderr.contains(secret.1),
            "the secret is never printed: {stderr}"
        );
    }
}
