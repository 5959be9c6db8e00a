//! The `Host` header must be `host[:port]` as RFC 3986 defines it (reg-name, IPv4 address or
//! bracketed IP literal, and digits of a port up to 65535). Anything else is refused with 400
//! before a handler runs: the header is reflected into `Location` and the UI's links, and a
//! value such as `127.0.0.1:1@evil.example` would send clients to another host.

use axum::http::header::HOST;
use axum::http::{HeaderMap, StatusCode};

use super::error::ApiError;

/// Checks a `Host` value; the error says what is wrong with it. An empty value (allowed by
/// HTTP/1.1 for requests without an authority) is accepted and treated as no host.
pub(crate) fn check_host(value: &str) -> Result<(), String> {
    if value.is_empty() {
        return Ok(());
    }
    let (host, port) = split_port(value)?;
    if let Some(port) = port {
        check_port(port)?;
    }
    if let Some(literal) = host.strip_prefix('[') {
        let inner = literal
            .strip_suffix(']')
            .ok_or("an IP literal must end with ']'")?;
        return check_ip_literal(inner);
    }
    if host.is_empty() {
        return Err("the host name is empty".to_owned());
    }
    check_reg_name(host)
}

/// `host` and the text after its port colon, if any.
fn split_port(value: &str) -> Result<(&str, Option<&str>), String> {
    if value.starts_with('[') {
        let Some(end) = value.find(']') else {
            return Err("an IP literal must end with ']'".to_owned());
        };
        let (host, rest) = value.split_at(end + 1);
        return match rest.strip_prefix(':') {
            Some(port) => Ok((host, Some(port))),
            None if rest.is_empty() => Ok((host, None)),
            None => Err(format!("unexpected {rest:?} after the IP literal")),
        };
    }
    Ok(match value.split_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (value, None),
    })
}

fn check_port(port: &str) -> Result<(), String> {
    if port.is_empty() {
        // RFC 3986 allows an empty port ("host:"); it means the default.
        return Ok(());
    }
    if !port.bytes().all(|byte| byte.is_ascii_digit()) {
        return Err(format!("port {port:?} is not a number"));
    }
    match port.parse::<u32>() {
        Ok(number) if number <= 65535 => Ok(()),
        _ => Err(format!("port {port} is larger than 65535")),
    }
}

/// `IPv6address` or `IPvFuture` (`v<hex>.<unreserved, sub-delims or ':'>`).
fn check_ip_literal(inner: &str) -> Result<(), String> {
    if inner.parse::<std::net::Ipv6Addr>().is_ok() {
        return Ok(());
    }
    let future = inner
        .strip_prefix(['v', 'V'])
        .and_then(|rest| rest.split_once('.'))
        .is_some_and(|(version, address)| {
            !version.is_empty()
                && version.bytes().all(|byte| byte.is_ascii_hexdigit())
                && !address.is_empty()
                && address
                    .bytes()
                    .all(|byte| is_unreserved(byte) || is_sub_delim(byte) || byte == b':')
        });
    if future {
        Ok(())
    } else {
        Err(format!("[{inner}] is not an IPv6 address"))
    }
}

/// `reg-name` (which includes IPv4 addresses): unreserved characters, sub-delims and
/// `%XX` escapes.
fn check_reg_name(host: &str) -> Result<(), String> {
    let bytes = host.as_bytes();
    let mut index = 0;
    while index < bytes.len() {
        let byte = bytes[index];
        if byte == b'%' {
            let escape = bytes.get(index + 1..index + 3);
            if !escape.is_some_and(|hex| hex.iter().all(u8::is_ascii_hexdigit)) {
                return Err("a '%' must start a %XX escape".to_owned());
            }
            index += 3;
            continue;
        }
        if !(is_unreserved(byte) || is_sub_delim(byte)) {
            let shown = host[index..].chars().next().unwrap_or('?');
            return Err(format!("{shown:?} is not allowed in a host name"));
        }
        index += 1;
    }
    Ok(())
}

fn is_unreserved(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~')
}

fn is_sub_delim(byte: u8) -> bool {
    matches!(
        byte,
        b'!' | b'$' | b'&' | b'\'' | b'(' | b')' | b'*' | b'+' | b',' | b';' | b'='
    )
}

/// The refusal of a request whose `Host` header is not one `host[:port]` (400), checked by
/// [`super::origin::guard`] before anything else, so that no handler sees such a header.
pub(crate) fn refusal(headers: &HeaderMap) -> Option<ApiError> {
    let mut values = headers.get_all(HOST).iter();
    let problem = match (values.next(), values.next()) {
        (Some(_), Some(_)) => "the request has several Host headers".to_owned(),
        (Some(value), None) => match value.to_str() {
            Ok(text) => {
                let why = check_host(text).err()?;
                format!("Host header {text:?} is not host[:port]: {why}")
            }
            Err(_) => "the Host header is not visible ASCII".to_owned(),
        },
        _ => return None,
    };
    Some(ApiError::refused(
        StatusCode::BAD_REQUEST,
        problem,
        "Bad Host header",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_and_port_forms_of_rfc_3986_are_accepted() {
        for good in [
            "",
            "localhost",
            "LOCALHOST:8080",
            "127.0.0.1",
            "127.0.0.1:31000",
            "example.org:",
            "eremetic.service.consul",
            "my_host-1.example",
            "xn--bcher-kva.example",
            "%41bc",
            "[::1]",
            "[::1]:8080",
            "[2001:db8::7]:443",
            "[v1.fe80::a+en1]",
        ] {
            assert_eq!(check_host(good), Ok(()), "{good}");
        }
    }

    #[test]
    fn malformed_hosts_are_refused_with_a_reason() {
        for (bad, reason) in [
            ("127.0.0.1:1@evil.example", "not a number"),
            ("a b", "' ' is not allowed"),
            ("x:y:z", "not a number"),
            ("[::1", "must end with ']'"),
            ("host:99999", "larger than 65535"),
            ("host:-1", "not a number"),
            ("evil.example/path", "'/' is not allowed"),
            ("user@host", "'@' is not allowed"),
            ("[::1]x", "unexpected"),
            ("[not-an-ip]", "not an IPv6 address"),
            (":8080", "host name is empty"),
            ("bad%zz", "%XX escape"),
            ("host\\evil", "'\\\\' is not allowed"),
        ] {
            let error = check_host(bad).unwrap_err();
            assert!(error.contains(reason), "{bad}: {error}");
        }
    }
}
