//! Input validation shared by the deciders: every refusal names the field and the problem, so
//! the API can answer with a precise 4xx.

use crate::money::Paise;

/// A command field that breaks a rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{field} {problem}")]
pub struct FieldError {
    /// The field's name as the API spells it, e.g. `"merchant_order_id"`.
    pub field: &'static str,
    /// What is wrong with it.
    pub problem: Problem,
}

/// What is wrong with a field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    /// Empty or only whitespace.
    #[error("must not be empty")]
    Empty,
    /// Longer than allowed.
    #[error("must be at most {max} characters")]
    TooLong {
        /// The most characters allowed.
        max: usize,
    },
    /// Holds characters outside the allowed set.
    #[error("may only contain {allowed}")]
    BadCharacters {
        /// The allowed set, described for people.
        allowed: &'static str,
    },
    /// Zero or negative where only positive values make sense.
    #[error("must be positive")]
    NotPositive,
    /// Outside the allowed range.
    #[error("must be between {min} and {max}")]
    OutOfRange {
        /// Smallest allowed value.
        min: i64,
        /// Largest allowed value.
        max: i64,
    },
    /// A value the product does not support, e.g. a currency other than INR.
    #[error("is not supported")]
    Unsupported,
    /// Not an absolute `http://` or `https://` URL.
    #[error("must be an absolute http(s) URL without spaces")]
    NotAUrl,
    /// Not a phone number in international format (country code and number, digits only).
    #[error("must be 10 to 15 digits in international format, e.g. 919867800451")]
    NotAPhoneNumber,
    /// Not one email address.
    #[error("must be one email address, e.g. billing@example.com")]
    NotAnEmail,
    /// Larger than another field it must not exceed.
    #[error("must not exceed {other}")]
    Exceeds {
        /// The other field.
        other: &'static str,
    },
}

impl Problem {
    /// This problem, attributed to `field`.
    pub const fn at(self, field: &'static str) -> FieldError {
        FieldError {
            field,
            problem: self,
        }
    }
}

/// Free text a person typed (names, reasons): trimmed non-empty, at most `max` characters, no
/// control characters. Returns the trimmed text.
pub(crate) fn text(field: &'static str, value: &str, max: usize) -> Result<String, FieldError> {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Err(Problem::Empty.at(field));
    }
    if trimmed.chars().count() > max {
        return Err(Problem::TooLong { max }.at(field));
    }
    if trimmed.chars().any(char::is_control) {
        return Err(Problem::BadCharacters {
            allowed: "printable characters",
        }
        .at(field));
    }
    Ok(trimmed.to_owned())
}

/// A machine token (order ids, template names): non-empty, at most `max` characters, each
/// accepted by `allowed`.
pub(crate) fn token(
    field: &'static str,
    value: &str,
    max: usize,
    allowed: fn(char) -> bool,
    described: &'static str,
) -> Result<(), FieldError> {
    if value.is_empty() {
        return Err(Problem::Empty.at(field));
    }
    if value.chars().count() > max {
        return Err(Problem::TooLong { max }.at(field));
    }
    if !value.chars().all(allowed) {
        return Err(Problem::BadCharacters { allowed: described }.at(field));
    }
    Ok(())
}

/// An amount above zero and at most `max`.
pub(crate) fn amount(field: &'static str, value: Paise, max: Paise) -> Result<(), FieldError> {
    if !value.is_positive() {
        return Err(Problem::NotPositive.at(field));
    }
    if value > max {
        return Err(Problem::OutOfRange { min: 1, max: max.0 }.at(field));
    }
    Ok(())
}

/// An integer setting within `min..=max`.
pub(crate) fn range(field: &'static str, value: u64, min: u64, max: u64) -> Result<(), FieldError> {
    if (min..=max).contains(&value) {
        Ok(())
    } else {
        let clamp = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        Err(Problem::OutOfRange {
            min: clamp(min),
            max: clamp(max),
        }
        .at(field))
    }
}

/// The longest URL accepted, in characters.
pub const MAX_URL_CHARS: usize = 2048;

/// An absolute `http(s)://host...` URL: no whitespace or control characters, a non-empty host,
/// at most [`MAX_URL_CHARS`]. Whether plain http is acceptable is the API's configuration.
pub(crate) fn http_url(field: &'static str, value: &str) -> Result<(), FieldError> {
    if value.chars().count() > MAX_URL_CHARS {
        return Err(Problem::TooLong { max: MAX_URL_CHARS }.at(field));
    }
    let rest = value
        .strip_prefix("https://")
        .or_else(|| value.strip_prefix("http://"))
        .ok_or(Problem::NotAUrl.at(field))?;
    let host = rest.find(['/', '?', '#']).map_or(rest, |end| &rest[..end]);
    if host.is_empty() || value.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(Problem::NotAUrl.at(field));
    }
    Ok(())
}

/// A WhatsApp number in international format: an optional `+`, then 10 to 15 digits. Returns
/// the digits, the form WhatsApp providers expect.
pub(crate) fn phone(field: &'static str, value: &str) -> Result<String, FieldError> {
    let digits = value.strip_prefix('+').unwrap_or(value);
    if (10..=15).contains(&digits.len()) && digits.chars().all(|c| c.is_ascii_digit()) {
        Ok(digits.to_owned())
    } else {
        Err(Problem::NotAPhoneNumber.at(field))
    }
}

/// Longest email address accepted, in bytes.
pub const MAX_EMAIL_LEN: usize = 254;

/// Whether `email` looks like one address: one `@`, something on each side, no space or
/// control character, at most [`MAX_EMAIL_LEN`] bytes. The mailer checks it fully when sending.
pub fn valid_email(email: &str) -> bool {
    let Some((local, domain)) = email.split_once('@') else {
        return false;
    };
    email.len() <= MAX_EMAIL_LEN
        && !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains('@')
        && !email.chars().any(|c| {
            c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | ',' | ';' | '"')
        })
}

/// An email address, trimmed, if it looks like one address ([`valid_email`]).
pub(crate) fn email(field: &'static str, value: &str) -> Result<String, FieldError> {
    let trimmed = value.trim();
    if valid_email(trimmed) {
        Ok(trimmed.to_owned())
    } else {
        Err(Problem::NotAnEmail.at(field))
    }
}

/// The first `max` characters of `value`, for excerpts stored in events (bounded size).
pub(crate) fn excerpt(value: &str, max: usize) -> String {
    value.chars().take(max).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_trimmed_and_bounded() {
        assert_eq!(text("company_name", "  Acme  ", 10), Ok("Acme".to_owned()));
        assert_eq!(
            text("company_name", "   ", 10),
            Err(Problem::Empty.at("company_name"))
        );
        assert_eq!(
            text("company_name", "abcdefghijk", 10),
            Err(Problem::TooLong { max: 10 }.at("company_name"))
        );
        assert!(text("company_name", "a\u{0}b", 10).is_err());
    }

    #[test]
    fn urls_need_a_scheme_and_a_host() {
        assert!(http_url("webhook_url", "https://acme.example/hooks?x=1").is_ok());
        assert!(http_url("webhook_url", "http://localhost:8080").is_ok());
        assert!(http_url("webhook_url", "ftp://acme.example").is_err());
        assert!(http_url("webhook_url", "https://").is_err());
        assert!(http_url("webhook_url", "https:///path").is_err());
        assert!(http_url("webhook_url", "https://acme.example/a b").is_err());
    }

    #[test]
    fn phones_are_normalised_to_digits() {
        assert_eq!(
            phone("whatsapp_number", "+919867800451"),
            Ok("919867800451".to_owned())
        );
        assert!(phone("whatsapp_number", "98678").is_err());
        assert!(phone("whatsapp_number", "+91 98678 00451").is_err());
    }

    #[test]
    fn amounts_are_positive_and_bounded() {
        assert!(amount("amount", Paise(1), Paise(10)).is_ok());
        assert_eq!(
            amount("amount", Paise(0), Paise(10)),
            Err(Problem::NotPositive.at("amount"))
        );
        assert_eq!(
            amount("amount", Paise(11), Paise(10)),
            Err(Problem::OutOfRange { min: 1, max: 10 }.at("amount"))
        );
    }
}
