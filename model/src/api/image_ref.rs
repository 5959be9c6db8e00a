//! Docker image references, checked at submission with the grammar of Docker's
//! `distribution/reference` package, so that a name Docker can never pull is refused with a
//! 400 instead of failing at launch (and using up retries):
//!
//! ```text
//! reference      := name [ ":" tag ] [ "@" digest ]
//! name           := [ domain "/" ] path-component ( "/" path-component )*   (≤ 255 chars)
//! domain         := domain-component ( "." domain-component )* [ ":" port ] | "[" IPv6 "]" [ ":" port ]
//! path-component := [a-z0-9]+ ( ( "." | "_" | "__" | "-"+ ) [a-z0-9]+ )*
//! tag            := [A-Za-z0-9_] [A-Za-z0-9_.-]{0,127}
//! digest         := algorithm ":" hex{32,}, algorithm := [A-Za-z][A-Za-z0-9]* ( [+._-] [A-Za-z][A-Za-z0-9]* )*
//! ```
//!
//! As in Docker, the first component is a registry domain when it contains `.` or `:`, is
//! `localhost`, or has upper-case letters.

/// Longest name (without tag and digest), as Docker's `NameTotalLengthMax`.
pub const MAX_IMAGE_NAME_LEN: usize = 255;

/// Checks `reference`; the error says what is wrong, without repeating a long value whole.
pub fn check_image_reference(reference: &str) -> Result<(), String> {
    let (rest, digest) = match reference.split_once('@') {
        Some((rest, digest)) => (rest, Some(digest)),
        None => (reference, None),
    };
    let last_slash = rest.rfind('/').map_or(0, |at| at + 1);
    let (name, tag) = match rest[last_slash..].rfind(':') {
        Some(colon) => (
            &rest[..last_slash + colon],
            Some(&rest[last_slash + colon + 1..]),
        ),
        None => (rest, None),
    };
    if name.len() > MAX_IMAGE_NAME_LEN {
        return Err(format!(
            "the name is {} characters long, at most {MAX_IMAGE_NAME_LEN} allowed",
            name.len()
        ));
    }
    if name.is_empty() {
        return Err("the name is empty".to_owned());
    }
    check_name(name)?;
    if let Some(tag) = tag {
        check_tag(tag)?;
    }
    if let Some(digest) = digest {
        check_digest(digest)?;
    }
    Ok(())
}

fn check_name(name: &str) -> Result<(), String> {
    let mut components = name.split('/').peekable();
    if let Some(first) = components.next() {
        let is_domain = components.peek().is_some()
            && (first.contains(['.', ':'])
                || first == "localhost"
                || first.chars().any(|c| c.is_ascii_uppercase()));
        if is_domain {
            check_domain(first)?;
        } else {
            check_path_component(first)?;
        }
    }
    components.try_for_each(check_path_component)
}

fn check_domain(domain: &str) -> Result<(), String> {
    let (host, port) = if let Some(literal) = domain.strip_prefix('[') {
        let (inner, rest) = literal
            .split_once(']')
            .ok_or_else(|| format!("registry {} has an unclosed '['", shorten(domain)))?;
        if inner.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(format!(
                "registry [{}] is not an IPv6 address",
                shorten(inner)
            ));
        }
        match rest {
            "" => (None, None),
            _ => (
                None,
                Some(rest.strip_prefix(':').ok_or_else(|| bad_domain(domain))?),
            ),
        }
    } else {
        match domain.split_once(':') {
            Some((host, port)) => (Some(host), Some(port)),
            None => (Some(domain), None),
        }
    };
    let valid_component = |part: &str| {
        !part.is_empty()
            && part.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !part.starts_with('-')
            && !part.ends_with('-')
    };
    if host.is_some_and(|host| !host.split('.').all(valid_component)) {
        return Err(bad_domain(domain));
    }
    if port.is_some_and(|port| port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit())) {
        return Err(format!("registry {}: port must be digits", shorten(domain)));
    }
    Ok(())
}

fn bad_domain(domain: &str) -> String {
    format!(
        "registry {} is not a host name (letters, digits and '-' between dots, optionally \
         :port)",
        shorten(domain)
    )
}

/// `[a-z0-9]+ ( ( "." | "_" | "__" | "-"+ ) [a-z0-9]+ )*`.
fn check_path_component(component: &str) -> Result<(), String> {
    let bytes = component.as_bytes();
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let mut index = 0;
    let mut valid = !bytes.is_empty();
    while valid && index < bytes.len() {
        let run = bytes[index..].iter().take_while(|b| alnum(**b)).count();
        if run == 0 {
            valid = false;
            break;
        }
        index += run;
        if index == bytes.len() {
            break;
        }
        let separator = bytes[index..].iter().take_while(|b| !alnum(**b)).count();
        let text = &component[index..index + separator];
        valid = matches!(text, "." | "_" | "__") || text.bytes().all(|b| b == b'-');
        index += separator;
        // A separator must be followed by more letters or digits.
        valid &= index < bytes.len();
    }
    if valid {
        Ok(())
    } else {
        Err(format!(
            "path component {:?} must be lower-case letters and digits, separated by '.', \
             '_', '__' or dashes",
            shorten(component)
        ))
    }
}

/// `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
fn check_tag(tag: &str) -> Result<(), String> {
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let valid = tag.len() <= 128
        && tag.bytes().next().is_some_and(word)
        && tag.bytes().all(|b| word(b) || b == b'.' || b == b'-');
    if valid {
        Ok(())
    } else {
        Err(format!(
            "tag {:?} must be 1 to 128 letters, digits, '_', '.' or '-', not starting with '.' \
             or '-'",
            shorten(tag)
        ))
    }
}

fn check_digest(digest: &str) -> Result<(), String> {
    let invalid = || {
        format!(
            "digest {:?} must be algorithm:hex (e.g. sha256: and 64 hex digits)",
            shorten(digest)
        )
    };
    let (algorithm, hex) = digest.split_once(':').ok_or_else(invalid)?;
    let algorithm_ok = algorithm.split(['+', '.', '-', '_']).all(|part| {
        part.bytes().next().is_some_and(|b| b.is_ascii_alphabetic())
            && part.bytes().all(|b| b.is_ascii_alphanumeric())
    });
    let hex_ok = hex.len() >= 32 && hex.bytes().all(|b| b.is_ascii_hexdigit());
    if algorithm_ok && hex_ok {
        Ok(())
    } else {
        Err(invalid())
    }
}

/// A long value cut for messages (a 300 KB name must not come back whole).
fn shorten(text: &str) -> String {
    const SHOWN: usize = 64;
    match text.char_indices().nth(SHOWN) {
        Some((at, _)) => format!("{}...", &text[..at]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_docker_accepts_are_accepted() {
        for good in [
            "busybox",
            "deimos-test/busybox:latest",
            "library/ubuntu:22.04",
            "my_org/my__app",
            "a.b/c",
            "a---b",
            "registry.example.com/team/app:v1.2-rc_3",
            "localhost/app",
            "localhost:5000/app:1",
            "127.0.0.1:5000/app",
            "[::1]:5000/app",
            "Registry.Example/app",
            "ubuntu@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
            "ubuntu:22.04@sha256:0123456789abcdef0123456789abcdef",
            "x/y/z/w",
        ] {
            assert_eq!(check_image_reference(good), Ok(()), "{good}");
        }
    }

    #[test]
    fn malformed_references_are_refused_with_the_rule_they_break() {
        let long = "a".repeat(300_000);
        for (bad, reason) in [
            ("../../etc/passwd", "registry .. is not a host name"),
            ("<script>alert(1)</script>", "path component"),
            (long.as_str(), "300000 characters long, at most 255"),
            ("Busybox", "path component \"Busybox\""),
            ("app/UPPER", "path component"),
            ("app:", "tag \"\""),
            ("app:-x", "tag"),
            ("app:a/b", "port must be digits"),
            ("app@sha256:xyz", "digest"),
            ("app@md5", "digest"),
            ("-app", "path component"),
            ("app-", "path component"),
            ("a..b", "path component"),
            ("a___b", "path component"),
            ("/app", "path component \"\""),
            ("app//x", "path component \"\""),
            ("reg.example:x/app", "port must be digits"),
            ("-reg.example/app", "registry"),
            ("[::1/app", "unclosed"),
            ("", "empty"),
        ] {
            let error = check_image_reference(bad).unwrap_err();
            assert!(error.contains(reason), "{bad:.40}: {error}");
            assert!(error.len() < 300, "the message repeats a long value whole");
        }
        let tag = format!("app:{}", "t".repeat(129));
        assert!(check_image_reference(&tag).unwrap_err().contains("tag"));
    }
}
