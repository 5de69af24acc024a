//! TLS to cluster nodes that the cluster announces by IP address.
//!
//! A profile names a node by host name (`rediss://redis.internal:6379`) and
//! the servers' certificate names that host, often with no IP address in it.
//! The cluster itself announces its nodes by IP (`CLUSTER SLOTS`/`NODES`), so
//! connecting to `10.0.0.2:6379` and checking the certificate against
//! `10.0.0.2` fails. cachedeck connects to the announced IP but checks the
//! certificate against the configured host name instead; the chain and the
//! name are still checked in full by the TLS library.
//!
//! redis-rs builds its TLS settings itself and takes no certificate
//! verifier, but it can connect to a node under another name
//! (`node_address_map`) and resolve names with a resolver of ours. So each
//! announced `ip:port` is given a name the certificate accepts, which our
//! resolver turns back into exactly that `ip:port`. Several nodes may listen
//! on the same port on different machines, and all must carry the
//! certificate's name: they get the name in different letter cases
//! (`localhost`, `Localhost`, `lOcalhost`, …), which host name checks ignore
//! and which keeps every (name, port) pair distinct for the resolver.
//!
//! Only applies when the configured host is a DNS name and the URL verifies
//! certificates; nodes announced by name connect as announced. The names are
//! given once, at connect, to the nodes the cluster lists then (replicas
//! included); a node that joins later is reached by its IP and checked
//! against it, which fails closed until cachedeck reconnects.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use redis::cluster::NodeAddress;
use redis::io::AsyncDNSResolver;

/// The names under which the announced nodes are reached.
#[derive(Debug, Clone, Default)]
pub(crate) struct NodeNames {
    /// Announced `ip:port` → the name (and port) to connect and verify with.
    names: HashMap<SocketAddr, String>,
    /// Resolves those names back to their `ip:port`; shared with redis-rs.
    resolver: Resolver,
}

/// Name → address for the names of [`NodeNames`]; any other name is looked
/// up in DNS as usual.
#[derive(Debug, Clone, Default)]
pub(crate) struct Resolver {
    /// (name as given, port) → the node's address.
    addrs: Arc<HashMap<(String, u16), SocketAddr>>,
}

impl AsyncDNSResolver for Resolver {
    fn resolve<'a, 'b: 'a>(
        &'a self,
        host: &'b str,
        port: u16,
    ) -> redis::RedisFuture<'a, Box<dyn Iterator<Item = SocketAddr> + Send + 'a>> {
        Box::pin(async move {
            if let Some(addr) = self.addrs.get(&(host.to_string(), port)) {
                return Ok(Box::new(std::iter::once(*addr)) as Box<dyn Iterator<Item = _> + Send>);
            }
            let found: Vec<SocketAddr> = tokio::net::lookup_host((host, port)).await?.collect();
            Ok(Box::new(found.into_iter()) as Box<dyn Iterator<Item = _> + Send>)
        })
    }
}

impl NodeNames {
    /// Names for the nodes of `CLUSTER NODES` text announced by IP, under
    /// the configured `host`. Empty when `host` is itself an IP address.
    pub(crate) fn plan(host: &str, cluster_nodes: &str) -> NodeNames {
        if host.parse::<IpAddr>().is_ok() || host.trim_matches(['[', ']']).parse::<IpAddr>().is_ok()
        {
            return NodeNames::default();
        }
        let mut names = HashMap::new();
        let mut addrs = HashMap::new();
        let mut per_port: HashMap<u16, u32> = HashMap::new();
        for addr in announced_ips(cluster_nodes) {
            if names.contains_key(&addr) {
                continue;
            }
            let n = per_port.entry(addr.port()).or_insert(0);
            // Never the host exactly as configured: that name stays DNS's
            // (the seed URL and anything else named so resolve as usual).
            let mut name = None;
            while let Some(v) = case_variant(host, *n) {
                *n += 1;
                if v != host {
                    name = Some(v);
                    break;
                }
            }
            // A host name with too few letters for this many nodes on one
            // port: that node stays reached (and checked) by its IP.
            let Some(name) = name else {
                continue;
            };
            addrs.insert((name.clone(), addr.port()), addr);
            names.insert(addr, name);
        }
        NodeNames {
            names,
            resolver: Resolver {
                addrs: Arc::new(addrs),
            },
        }
    }

    /// True when no node needs another name.
    pub(crate) fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// The map redis-rs applies when it connects to a node.
    pub(crate) fn address_map(&self) -> HashMap<NodeAddress, NodeAddress> {
        self.names
            .iter()
            .map(|(addr, name)| {
                (
                    NodeAddress::new(addr.ip().to_string(), addr.port()),
                    NodeAddress::new(name.clone(), addr.port()),
                )
            })
            .collect()
    }

    /// The resolver that turns the names back into addresses.
    pub(crate) fn resolver(&self) -> Resolver {
        self.resolver.clone()
    }

    /// The name to reach `ip:port` under, when it has one.
    pub(crate) fn name_of(&self, hostport: &str) -> Option<&str> {
        self.names.get(&ip_port(hostport)?).map(String::as_str)
    }
}

/// Every node address of `CLUSTER NODES` text that is an IP address
/// (`ip:port@bus` or `ip:port@bus,hostname`), in order.
fn announced_ips(cluster_nodes: &str) -> Vec<SocketAddr> {
    cluster_nodes
        .lines()
        .filter_map(|line| {
            let field = line.split_whitespace().nth(1)?;
            ip_port(field.split(['@', ',']).next()?)
        })
        .collect()
}

/// `ip:port`, `[ip]:port` or `ip6:port` (as `CLUSTER NODES` writes IPv6)
/// as an address; `None` for a host name.
fn ip_port(hostport: &str) -> Option<SocketAddr> {
    let (ip, port) = hostport.rsplit_once(':')?;
    let ip: IpAddr = ip.trim_matches(['[', ']']).parse().ok()?;
    Some(SocketAddr::new(ip, port.parse().ok()?))
}

/// `host` with its letters' case set by the bits of `n` (0: lower case);
/// `None` when `host` has too few letters to tell `n` apart.
fn case_variant(host: &str, n: u32) -> Option<String> {
    let letters = host.chars().filter(char::is_ascii_alphabetic).count() as u32;
    if letters < 32 && n >> letters != 0 {
        return None;
    }
    let mut bit = 0;
    Some(
        host.chars()
            .map(|c| {
                if !c.is_ascii_alphabetic() {
                    return c;
                }
                let upper = bit < 32 && (n >> bit) & 1 == 1;
                bit += 1;
                if upper {
                    c.to_ascii_uppercase()
                } else {
                    c.to_ascii_lowercase()
                }
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const NODES: &str = "\
a1 10.0.0.1:6379@16379 myself,master - 0 0 1 connected 0-5460
a2 10.0.0.2:6379@16379 master - 0 0 2 connected 5461-10922
a3 10.0.0.3:6380@16380,db-3 master - 0 0 3 connected 10923-16383
a4 name.example:6379@16379 slave a1 0 0 1 connected
a5 :0@0 master,noaddr - 0 0 0 disconnected
";

    #[test]
    fn nodes_by_ip_get_distinct_names_the_certificate_accepts() {
        let n = NodeNames::plan("Redis.Internal", NODES);
        assert_eq!(n.name_of("10.0.0.1:6379"), Some("redis.internal"));
        assert_eq!(n.name_of("10.0.0.2:6379"), Some("Redis.internal"));
        assert_eq!(n.name_of("10.0.0.3:6380"), Some("redis.internal"));
        assert_eq!(n.name_of("name.example:6379"), None);
        let v6 = NodeNames::plan("h", "a ::1:7000@17000 master\n");
        // Never the configured spelling itself: that one stays DNS's.
        assert_eq!(v6.name_of("::1:7000"), Some("H"));
        assert_eq!(v6.name_of("[::1]:7000"), Some("H"));
        let map = n.address_map();
        assert_eq!(map.len(), 3);
        assert_eq!(
            map[&NodeAddress::new("10.0.0.2", 6379)],
            NodeAddress::new("Redis.internal", 6379)
        );
        for (name, addr) in [
            ("redis.internal", "10.0.0.1:6379"),
            ("Redis.internal", "10.0.0.2:6379"),
            ("redis.internal", "10.0.0.3:6380"),
        ] {
            let port = addr.rsplit_once(':').unwrap().1.parse().unwrap();
            let got = n.resolver.addrs[&(name.to_string(), port)];
            assert_eq!(got.to_string(), addr);
        }
    }

    #[test]
    fn a_configured_ip_or_too_few_letters_maps_nothing_it_cannot() {
        assert!(NodeNames::plan("127.0.0.1", NODES).is_empty());
        assert!(NodeNames::plan("[::1]", NODES).is_empty());
        // One letter has two spellings, one of them the configured host's:
        // one node on a port gets the other, the rest stay by IP.
        let three = "x 10.0.0.1:1@2 master\ny 10.0.0.2:1@2 master\nz 10.0.0.3:1@2 master\n";
        let n = NodeNames::plan("r1", three);
        assert_eq!(n.name_of("10.0.0.1:1"), Some("R1"));
        assert_eq!(n.name_of("10.0.0.2:1"), None);
        assert_eq!(n.name_of("10.0.0.3:1"), None);
    }

    #[test]
    fn case_variants() {
        assert_eq!(case_variant("ab-1.c", 0).as_deref(), Some("ab-1.c"));
        assert_eq!(case_variant("ab-1.c", 5).as_deref(), Some("Ab-1.C"));
        assert_eq!(case_variant("ab", 4), None);
    }
}
