//! Email addresses and passwords as the registration rules define them.

/// A normalised (trimmed, lower-case) email address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    /// Normalise and validate.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let email = raw.trim().to_lowercase();
        let Some((local, domain)) = email.split_once('@') else {
            return Err("the email address needs an @".into());
        };
        let ok = !local.is_empty()
            && email.len() <= 254
            && local.len() <= 64
            && domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !domain.contains('@')
            && !email.chars().any(|c| c.is_whitespace() || c.is_control());
        if ok {
            Ok(Self(email))
        } else {
            Err("the email address is not valid".into())
        }
    }

    /// The address.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A password that meets the rules: 10 to 128 characters, at least one letter and one digit, and not
/// containing the email's local part. Never logged, never Debug-printed.
pub struct Password(String);

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

impl Password {
    /// Check the rules for a new password of `email`.
    pub fn parse_new(raw: &str, email: &Email) -> Result<Self, String> {
        let length = raw.chars().count();
        if length < 10 {
            return Err("the password needs at least 10 characters".into());
        }
        if length > 128 {
            return Err("the password can have at most 128 characters".into());
        }
        if !raw.chars().any(char::is_alphabetic) || !raw.chars().any(|c| c.is_ascii_digit()) {
            return Err("the password needs at least one letter and one digit".into());
        }
        let local = email.as_str().split('@').next().unwrap_or_default();
        if local.len() >= 3 && raw.to_lowercase().contains(local) {
            return Err("the password must not contain the email address".into());
        }
        Ok(Self(raw.to_owned()))
    }

    /// The secret.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_normalised() {
        assert_eq!(
            Email::parse("  Alice@Example.COM ").unwrap().as_str(),
            "alice@example.com"
        );
        for bad in [
            "",
            "alice",
            "alice@",
            "@example.com",
            "alice@example",
            "a b@example.com",
            "a@@b.com",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn password_rules_are_enforced() {
        let email = Email::parse("alice@example.com").unwrap();
        assert!(Password::parse_new("correct horse 42", &email).is_ok());
        assert!(Password::parse_new("short1", &email).is_err());
        assert!(Password::parse_new("onlylettersxx", &email).is_err());
        assert!(Password::parse_new("1234567890123", &email).is_err());
        assert!(Password::parse_new("Alice12345678", &email).is_err());
        assert!(Password::parse_new(&"a1".repeat(65), &email).is_err());
        assert_eq!(
            format!(
                "{:?}",
                Password::parse_new("correct horse 42", &email).unwrap()
            ),
            "Password(<redacted>)"
        );
    }
}
