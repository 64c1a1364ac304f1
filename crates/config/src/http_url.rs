//! `http://` and `https://` URLs as the server posts to them (RFC 9110 §4.2, RFC 3986 §3): an
//! absolute URL with a host, an optional port and a path with an optional query, nothing else.
//!
//! Strict on purpose: what an operator writes is checked when the file is read, so that a typo
//! is a clear error at start instead of a failed request at the first alert. Credentials in the
//! URL (`user:password@`) and fragments are refused, international host names must be written
//! in their `xn--` form and other characters percent-encoded.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

/// A parsed `http` or `https` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpUrl {
    /// `https`: the request goes over TLS.
    pub https: bool,
    /// A DNS name in lowercase, an IPv4 address, or an IPv6 address (without brackets).
    pub host: String,
    /// The port written, or 80 / 443.
    pub port: u16,
    /// The request target: the path (at least `/`) and the query, if any (RFC 9112 §3.2.1).
    pub target: String,
}

/// DNS limits (RFC 1035 §2.3.4).
const MAX_LABEL_LEN: usize = 63;
const MAX_NAME_LEN: usize = 253;

impl HttpUrl {
    /// Parses `text`; the error says what is wrong in words an operator can act on.
    pub fn parse(text: &str) -> Result<HttpUrl, String> {
        if text.is_empty() {
            return Err("must not be empty".to_owned());
        }
        if let Some(bad) = text.chars().find(|c| !c.is_ascii_graphic()) {
            let what = if bad.is_whitespace() {
                "white space".to_owned()
            } else {
                format!("`{}`", bad.escape_default())
            };
            return Err(format!(
                "contains {what}; percent-encode it (and write an international host name in its `xn--` form)"
            ));
        }
        let Some((scheme, rest)) = text.split_once("://") else {
            return Err(format!(
                "`{text}` is not an absolute URL; write it as https://HOST[:PORT]/PATH"
            ));
        };
        let https = if scheme.eq_ignore_ascii_case("https") {
            true
        } else if scheme.eq_ignore_ascii_case("http") {
            false
        } else {
            return Err(format!(
                "the scheme `{scheme}` is not supported; use https:// (or http:// on a trusted network)"
            ));
        };
        if rest.contains('#') {
            return Err("a fragment (`#…`) is never sent to the server; remove it".to_owned());
        }
        let end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(end);
        if authority.contains('@') {
            return Err(
                "must not hold credentials (`user:password@`); they would be written in logs and files that show the URL"
                    .to_owned(),
            );
        }
        let (host, port) = split_host_port(authority)?;
        let port = match port {
            None => {
                if https {
                    443
                } else {
                    80
                }
            }
            Some(p) => p,
        };
        check_target(tail)?;
        let target = if tail.starts_with('/') {
            tail.to_owned()
        } else {
            // RFC 9112 §3.2.1: an empty path is sent as `/`.
            format!("/{tail}")
        };
        Ok(HttpUrl {
            https,
            host,
            port,
            target,
        })
    }

    /// Whether the port is the scheme's own.
    fn default_port(&self) -> bool {
        self.port == if self.https { 443 } else { 80 }
    }

    /// The `Host` header's value (RFC 9110 §7.2): the host, in brackets when it is an IPv6
    /// address, with the port unless it is the scheme's.
    pub fn authority(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        if self.default_port() {
            host
        } else {
            format!("{host}:{}", self.port)
        }
    }

    /// `scheme://host:port`, without the path and query: what logs show, since a path or query
    /// often carries a secret of the receiving service.
    pub fn origin(&self) -> String {
        let scheme = if self.https { "https" } else { "http" };
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        format!("{scheme}://{host}:{}", self.port)
    }
}

impl fmt::Display for HttpUrl {
    /// The whole URL, normalized. Holds the path and query: see [`HttpUrl::origin`] for logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = if self.https { "https" } else { "http" };
        write!(f, "{scheme}://{}{}", self.authority(), self.target)
    }
}

fn split_host_port(authority: &str) -> Result<(String, Option<u16>), String> {
    let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
        let Some((ip, after)) = rest.split_once(']') else {
            return Err(format!(
                "`{authority}`: the `[` of an IPv6 address is not closed"
            ));
        };
        if ip.parse::<Ipv6Addr>().is_err() {
            return Err(format!("`{ip}` is not an IPv6 address"));
        }
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':').ok_or_else(|| {
                format!("`{authority}`: expected `:PORT` after the IPv6 address")
            })?),
        };
        (ip.to_ascii_lowercase(), port)
    } else {
        let (host, port) = match authority.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        };
        if host.is_empty() {
            return Err("has no host".to_owned());
        }
        if host.contains(':') || port.is_some_and(|p| p.contains(':')) {
            return Err(format!(
                "`{authority}`: an IPv6 address must be written in brackets, as in http://[2001:db8::5]:8080/"
            ));
        }
        if host.parse::<Ipv4Addr>().is_err() {
            check_dns_name(host)?;
        }
        (host.to_ascii_lowercase(), port)
    };
    let port = match port {
        None => None,
        Some(p) => {
            let n = if !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()) {
                p.parse::<u32>().ok()
            } else {
                None
            };
            match n.and_then(|n| u16::try_from(n).ok()) {
                Some(n) if n > 0 => Some(n),
                _ => return Err(format!("`{p}` is not a port number (1 to 65535)")),
            }
        }
    };
    Ok((host, port))
}

/// A DNS name in ASCII (RFC 1123 §2.1 host names): letters, digits and hyphens in labels of at
/// most 63 characters, a hyphen neither first nor last.
fn check_dns_name(host: &str) -> Result<(), String> {
    let name = host.strip_suffix('.').unwrap_or(host);
    if name.len() > MAX_NAME_LEN {
        return Err(format!(
            "the host name is {} bytes long; a DNS name has at most {MAX_NAME_LEN}",
            name.len()
        ));
    }
    for label in name.split('.') {
        if label.is_empty() {
            return Err(format!("`{host}` has an empty label (two dots in a row?)"));
        }
        if label.len() > MAX_LABEL_LEN {
            return Err(format!(
                "`{host}` has a label longer than {MAX_LABEL_LEN} characters"
            ));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(format!(
                "`{host}`: a label cannot start or end with a hyphen"
            ));
        }
        if let Some(bad) = label
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || *c == '-'))
        {
            return Err(format!(
                "`{host}` contains `{}`; a host name has only letters, digits, hyphens and dots",
                bad.escape_default()
            ));
        }
    }
    Ok(())
}

/// The path and query: RFC 3986 `pchar`s, `/` and `?`, with well-formed percent-encodings.
fn check_target(target: &str) -> Result<(), String> {
    let bytes = target.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'%' {
            let pair = bytes.get(i + 1..i + 3);
            if !pair.is_some_and(|p| p.iter().all(u8::is_ascii_hexdigit)) {
                return Err(format!(
                    "`{target}`: `%` must start a percent-encoding such as %20"
                ));
            }
            i += 3;
            continue;
        }
        let allowed = b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@/?".contains(&b);
        if !allowed {
            return Err(format!(
                "`{target}` contains `{}`; percent-encode it",
                char::from(b)
            ));
        }
        i += 1;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(text: &str) -> HttpUrl {
        HttpUrl::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    #[test]
    fn hosts_ports_and_targets() {
        let u = ok("https://siem.example/hook");
        assert_eq!(
            (u.https, u.host.as_str(), u.port, u.target.as_str()),
            (true, "siem.example", 443, "/hook")
        );
        assert_eq!(u.authority(), "siem.example");
        assert_eq!(u.origin(), "https://siem.example:443");
        let u = ok("HTTP://SIEM.Example:8080");
        assert_eq!(
            (u.https, u.host.as_str(), u.port, u.target.as_str()),
            (false, "siem.example", 8080, "/")
        );
        assert_eq!(u.authority(), "siem.example:8080");
        let u = ok("http://127.0.0.1:9/a/b?x=1&y=%2F");
        assert_eq!((u.host.as_str(), u.port), ("127.0.0.1", 9));
        assert_eq!(u.target, "/a/b?x=1&y=%2F");
        let u = ok("https://[2001:DB8::5]:8443?k=v");
        assert_eq!((u.host.as_str(), u.port), ("2001:db8::5", 8443));
        assert_eq!(u.target, "/?k=v");
        assert_eq!(u.authority(), "[2001:db8::5]:8443");
        assert_eq!(u.to_string(), "https://[2001:db8::5]:8443/?k=v");
        let u = ok("http://[::1]/");
        assert_eq!((u.authority().as_str(), u.port), ("[::1]", 80));
        assert_eq!(
            ok("https://xn--bcher-kva.example/").host,
            "xn--bcher-kva.example"
        );
    }

    #[test]
    fn refusals_say_why() {
        for (text, want) in [
            ("", "empty"),
            ("siem.example/hook", "absolute URL"),
            ("ftp://siem.example/", "scheme `ftp`"),
            ("https://user:pw@siem.example/", "credentials"),
            ("https://siem.example/#top", "fragment"),
            ("https:///hook", "no host"),
            ("https://siem.example:0/", "port number"),
            ("https://siem.example:65536/", "port number"),
            ("https://siem.example:/", "port number"),
            ("https://siem.example:80x/", "port number"),
            ("https://2001:db8::5/", "brackets"),
            ("https://[2001:db8::zz]/", "not an IPv6 address"),
            ("https://[::1/", "not closed"),
            ("https://[::1]x/", "`:PORT`"),
            ("https://siem..example/", "empty label"),
            ("https://-siem.example/", "hyphen"),
            ("https://siem_x.example/", "contains `_`"),
            ("https://bücher.example/", "xn--"),
            ("https://siem.example/a b", "white space"),
            ("https://siem.example/a\r\nX-Evil: 1", "white space"),
            ("https://siem.example/a\u{7f}", "`\\u{7f}`"),
            ("https://siem.example/a\"b", "contains `\"`"),
            ("https://siem.example/%zz", "percent-encoding"),
            ("https://siem.example/%4", "percent-encoding"),
        ] {
            let err = HttpUrl::parse(text).expect_err(text);
            assert!(err.contains(want), "{text}: {err}");
        }
    }
}
