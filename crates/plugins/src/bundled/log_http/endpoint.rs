//! An endpoint URL of the HTTP log and trace exporters (http-log's `http_endpoint`,
//! opentelemetry's `traces_endpoint`): scheme, user info, host, port and path (Kong sends to
//! `scheme://host:port/path`, without the query).

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Endpoint {
    pub tls: bool,
    pub userinfo: Option<String>,
    pub host: String,
    pub port: u16,
    pub path: String,
}

impl Endpoint {
    pub fn parse(url: &str) -> Result<Endpoint, String> {
        let (tls, rest) = if let Some(r) = url.strip_prefix("http://") {
            (false, r)
        } else if let Some(r) = url.strip_prefix("https://") {
            (true, r)
        } else {
            return Err("unsupported scheme; must be http or https".into());
        };
        let (authority, path) = match rest.find(['/', '?', '#']) {
            Some(i) => rest.split_at(i),
            None => (rest, ""),
        };
        let path = path.split(['?', '#']).next().unwrap_or_default();
        let path = if path.is_empty() { "/" } else { path };
        let (userinfo, hostport) = match authority.rsplit_once('@') {
            Some((u, h)) => (Some(u.to_string()), h),
            None => (None, authority),
        };
        let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
            let (h, p) = v6.split_once(']').ok_or("invalid host")?;
            (h, p.strip_prefix(':'))
        } else {
            match hostport.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (hostport, None),
            }
        };
        if host.is_empty() {
            return Err("missing host in url".into());
        }
        let port = match port {
            Some(p) => p.parse().map_err(|_| format!("invalid port: {p}"))?,
            None if tls => 443,
            None => 80,
        };
        Ok(Endpoint {
            tls,
            userinfo,
            host: host.to_string(),
            port,
            path: path.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_kong_endpoints() {
        let e = Endpoint::parse("http://user:pa%20ss@logs.example:8080/in?x=1").unwrap();
        assert_eq!(e.userinfo.as_deref(), Some("user:pa%20ss"));
        assert_eq!(
            (e.host.as_str(), e.port, e.path.as_str()),
            ("logs.example", 8080, "/in")
        );
        let e = Endpoint::parse("https://[::1]").unwrap();
        assert_eq!(
            (e.host.as_str(), e.port, e.path.as_str(), e.tls),
            ("::1", 443, "/", true)
        );
        assert!(Endpoint::parse("ftp://x").is_err());
        assert!(Endpoint::parse("http://").is_err());
    }
}
