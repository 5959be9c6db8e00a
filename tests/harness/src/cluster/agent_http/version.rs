//! The agent's Mesos version, which decides what its endpoints offer.

use std::fmt;

/// A Mesos version, `major.minor[.patch]` (the patch is not needed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Version {
    major: u32,
    minor: u32,
}

impl Version {
    /// `major.minor`.
    pub const fn new(major: u32, minor: u32) -> Self {
        Version { major, minor }
    }

    /// Parses `1.12.0`, `1.4` or `0.28.2`; the error says what is wrong.
    pub fn parse(text: &str) -> Result<Version, String> {
        let mut parts = text.trim().split('.');
        let mut number = |what: &str| -> Result<u32, String> {
            let part = parts.next().unwrap_or("");
            part.parse().map_err(|_| {
                format!(
                    "'{text}' is not a Mesos version (major.minor[.patch]): bad {what} '{part}'"
                )
            })
        };
        let major = number("major")?;
        let minor = number("minor")?;
        if let Some(patch) = parts.next() {
            if patch.parse::<u32>().is_err() {
                return Err(format!(
                    "'{text}' is not a Mesos version (major.minor[.patch]): bad patch '{patch}'"
                ));
            }
        }
        Ok(Version { major, minor })
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_compare_numerically() {
        assert!(Version::parse("1.12.0").unwrap() > Version::parse("1.5").unwrap());
        assert!(Version::parse("0.28.2").unwrap() < Version::new(1, 4));
    }

    #[test]
    fn a_version_that_is_not_numbers_is_refused_with_the_part() {
        let error = Version::parse("1.x").unwrap_err();
        assert!(error.contains("bad minor 'x'"), "{error}");
        assert!(Version::parse("1.2.z").is_err());
    }
}
