//! Which network addresses push subscribers may be reached at (a guard against server-side
//! request forgery: a subscriber URL that points push workers at the pod itself, the cloud's
//! metadata service or an internal network). Checked on the addresses actually connected
//! to, after DNS resolution, so a name that resolves to a denied address is refused too.

use ipnet::IpNet;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

/// Networks push workers may not connect to.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AddressPolicy {
    denied: Vec<IpNet>,
}

impl AddressPolicy {
    /// Reads a comma-separated list of CIDR networks and the names `loopback`, `link-local`
    /// (cloud metadata services live there), `private` (RFC 1918, carrier-grade NAT and IPv6
    /// unique local addresses, where cluster networks usually are) and `unspecified`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut denied = Vec::new();
        for item in text.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            let named: &[&str] = match item {
                // 0.0.0.0 and :: reach the host itself when connected to.
                "loopback" => &["127.0.0.0/8", "::1/128", "0.0.0.0/8", "::/128"],
                "link-local" => &["169.254.0.0/16", "fe80::/10"],
                "private" => &[
                    "10.0.0.0/8",
                    "172.16.0.0/12",
                    "192.168.0.0/16",
                    "100.64.0.0/10",
                    "fc00::/7",
                ],
                "unspecified" => &["0.0.0.0/32", "::/128"],
                _ => &[],
            };
            if named.is_empty() {
                let net = item
                    .parse::<IpNet>()
                    .or_else(|_| item.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| {
                        format!(
                            "{item:?} is not a network (CIDR, an address, loopback, link-local, private or unspecified)"
                        )
                    })?;
                denied.push(net);
            } else {
                denied.extend(named.iter().filter_map(|n| n.parse::<IpNet>().ok()));
            }
        }
        Ok(AddressPolicy { denied })
    }

    pub fn is_empty(&self) -> bool {
        self.denied.is_empty()
    }

    /// May push workers connect to `ip`? IPv4 addresses written as IPv6 count as IPv4.
    pub fn allows(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        !self.denied.iter().any(|net| net.contains(&ip))
    }
}

/// A DNS resolver that leaves out denied addresses, and fails when none is left.
pub struct GuardedResolver(pub Arc<AddressPolicy>);

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.0.clone();
        let host = name.as_str().to_string();
        Box::pin(async move {
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let allowed: Vec<SocketAddr> = found
                .into_iter()
                .filter(|a| policy.allows(a.ip()))
                .collect();
            if allowed.is_empty() {
                return Err(
                    format!("{host} resolves only to addresses FERROMQ_PUSH_DENY refuses").into(),
                );
            }
            Ok(Box::new(allowed.into_iter()) as Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_networks_deny_what_they_say() {
        let policy = AddressPolicy::parse("loopback, link-local, 203.0.113.0/24").unwrap();
        for denied in [
            "127.0.0.1",
            "::1",
            "169.254.169.254",
            "203.0.113.9",
            "::ffff:127.0.0.1",
        ] {
            assert!(!policy.allows(denied.parse().unwrap()), "{denied}");
        }
        for allowed in ["10.1.2.3", "93.184.216.34", "2001:db8::1"] {
            assert!(policy.allows(allowed.parse().unwrap()), "{allowed}");
        }
        let private = AddressPolicy::parse("private").unwrap();
        assert!(!private.allows("10.96.0.10".parse().unwrap()));
        assert!(!private.allows("fd00::1".parse().unwrap()));
        assert!(AddressPolicy::parse("").unwrap().is_empty());
        assert!(AddressPolicy::parse("intranet").is_err());
    }
}
