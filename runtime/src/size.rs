//! Sizes in bytes as configuration files write them (`1073741824`, `512MiB`, `1G`), read by
//! one pure parser for `deimos.cfg` and eremetic's configuration alike.
//!
//! Every function returns the reason a value is rejected; the caller adds the key and where
//! the value came from.

/// Binary size units [`parse_size`] accepts, largest first, with their short forms.
const SIZE_UNITS: [(&str, &str, u64); 5] = [
    ("PiB", "P", 1 << 50),
    ("TiB", "T", 1 << 40),
    ("GiB", "G", 1 << 30),
    ("MiB", "M", 1 << 20),
    ("KiB", "K", 1 << 10),
];

/// Parses a size: a whole number of bytes, optionally followed (with or without a space) by a
/// binary unit `B`, `KiB`, `MiB`, `GiB`, `TiB`, `PiB` or its short form `K`, `M`, `G`, `T`,
/// `P`, in any case: `1073741824`, `512 MiB`, `64k`, `1G`. Decimal units (`GB`) and fractions
/// are refused rather than guessed. Zero is a size; callers that need more say so.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let trimmed = text.trim();
    let split = trimmed
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(trimmed.len());
    let (digits, unit) = trimmed.split_at(split);
    let unit = unit.trim();
    let amount: u64 = digits.parse().map_err(|_| {
        format!(
            "{text:?} is not a size (use a whole number of bytes or e.g. 64KiB, 512MiB, 1GiB, 2TiB)"
        )
    })?;
    let multiplier = unit_size(unit).ok_or_else(|| {
        format!(
            "{text:?} is not a size: unknown unit {unit:?} (use B, KiB, MiB, GiB, TiB, PiB or \
             K, M, G, T, P)"
        )
    })?;
    amount
        .checked_mul(multiplier)
        .ok_or_else(|| format!("{text:?} is too large a size (at most 16 EiB)"))
}

/// The number of bytes of one `unit` (`""` and `B` are bytes), any case.
fn unit_size(unit: &str) -> Option<u64> {
    if unit.is_empty() || unit.eq_ignore_ascii_case("B") {
        return Some(1);
    }
    SIZE_UNITS
        .iter()
        .find(|(long, short, _)| {
            unit.eq_ignore_ascii_case(long) || unit.eq_ignore_ascii_case(short)
        })
        .map(|(_, _, size)| *size)
}

/// Parses a size that must be more than zero (a cap of zero bytes would refuse everything).
pub fn parse_positive_size(text: &str) -> Result<u64, String> {
    match parse_size(text)? {
        0 => Err(format!("{text:?} must be more than zero")),
        bytes => Ok(bytes),
    }
}

/// The shortest exact spelling [`parse_size`] reads back (`1GiB`, `1500`).
pub fn format_size(bytes: u64) -> String {
    SIZE_UNITS
        .iter()
        .find(|(_, _, size)| bytes > 0 && bytes % size == 0)
        .map_or_else(
            || bytes.to_string(),
            |(unit, _, size)| format!("{}{unit}", bytes / size),
        )
}

/// A size for people, rounded to one decimal: `512 MiB`, `1.5 GiB`, `300 bytes`.
pub fn human_size(bytes: u64) -> String {
    SIZE_UNITS
        .iter()
        .rev()
        .take_while(|(_, _, size)| bytes >= *size)
        .last()
        .map_or_else(
            || format!("{bytes} bytes"),
            |(unit, _, size)| {
                let value = bytes as f64 / *size as f64;
                let text = format!("{value:.1}");
                let text = text.strip_suffix(".0").unwrap_or(&text);
                format!("{text} {unit}")
            },
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_accept_bytes_and_binary_units_in_any_case() {
        assert_eq!(parse_size("1073741824"), Ok(1 << 30));
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        assert_eq!(parse_size("1G"), Ok(1 << 30));
        assert_eq!(parse_size("10MiB"), Ok(10 << 20));
        assert_eq!(parse_size("512 MiB"), Ok(512 << 20));
        assert_eq!(parse_size("64k"), Ok(64 << 10));
        assert_eq!(parse_size("2tib"), Ok(2 << 40));
        assert_eq!(parse_size("1000PiB"), Ok(1000 << 50));
        assert_eq!(parse_size("0"), Ok(0));
        assert_eq!(parse_size("10B"), Ok(10));
        assert_eq!(parse_size(" 1000 "), Ok(1000));
    }

    #[test]
    fn sizes_reject_garbage_fractions_decimal_units_and_overflow() {
        for bad in ["", "GiB", "1.5GiB", "-1", "1GB", "ten", "1 GiB x"] {
            let error = parse_size(bad).unwrap_err();
            assert!(error.contains("is not a size"), "{bad}: {error}");
        }
        let error = parse_size("1GB").unwrap_err();
        assert!(error.contains("unknown unit \"GB\""), "{error}");
        assert!(parse_size("20000PiB").unwrap_err().contains("too large"));
        assert!(parse_size("99999999TiB").unwrap_err().contains("too large"));
    }

    #[test]
    fn positive_sizes_refuse_zero() {
        assert_eq!(parse_positive_size("1KiB"), Ok(1024));
        let error = parse_positive_size("0MiB").unwrap_err();
        assert!(error.contains("more than zero"), "{error}");
    }

    #[test]
    fn sizes_format_exactly_and_read_back() {
        assert_eq!(format_size(1 << 30), "1GiB");
        assert_eq!(format_size(1500), "1500");
        assert_eq!(format_size(3 << 20), "3MiB");
        assert_eq!(format_size(0), "0");
        for bytes in [1u64 << 30, 3 << 20, 1000, 1536, 1000 << 50, 0] {
            assert_eq!(parse_size(&format_size(bytes)), Ok(bytes), "{bytes}");
        }
    }

    #[test]
    fn sizes_for_people_round_to_one_decimal() {
        assert_eq!(human_size(300), "300 bytes");
        assert_eq!(human_size(512 << 20), "512 MiB");
        assert_eq!(human_size(3 << 29), "1.5 GiB");
    }
}
