//! Which address a request came from, as the throttle and the audit trail record it.

use std::net::{IpAddr, SocketAddr};

use ipnet::IpNet;

use crate::config::ProxyHeader;

/// The client address of a request: the socket peer's, or, when the peer is one of the
/// configured `--trusted-proxies`, the right-most hop of the forwarding header that is
/// not itself a trusted proxy. `values` are the forwarding header's lines, in order.
pub fn resolve_client_ip(
    peer: Option<IpAddr>,
    values: &[&str],
    trusted: &[IpNet],
    header: ProxyHeader,
) -> Option<IpAddr> {
    let peer = peer?.to_canonical();
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(&peer) {
        return Some(peer);
    }
    let hops: Vec<Option<IpAddr>> = values
        .iter()
        .flat_map(|line| line.split(','))
        .map(|hop| match header {
            ProxyHeader::XForwardedFor => parse_node(hop),
            ProxyHeader::Forwarded => forwarded_for(hop).and_then(parse_node),
        })
        .collect();
    // Walk from the peer outwards while each hop is a trusted proxy: the first one that
    // is not is the client. A hop that is not an address (garbage, `unknown`, an
    // obfuscated name) ends the walk at the last trusted proxy, which is all we know.
    let mut nearest = peer;
    for hop in hops.into_iter().rev() {
        match hop.map(|ip| ip.to_canonical()) {
            Some(ip) if is_trusted(&ip) => nearest = ip,
            Some(ip) => return Some(ip),
            None => return Some(nearest),
        }
    }
    Some(nearest)
}

/// The `for=` value of one `Forwarded` element (`for=1.2.3.4;proto=https`).
fn forwarded_for(element: &str) -> Option<&str> {
    element.split(';').find_map(|pair| {
        let (key, value) = pair.split_once('=')?;
        key.trim()
            .eq_ignore_ascii_case("for")
            .then(|| value.trim().trim_matches('"'))
    })
}

/// `1.2.3.4`, `1.2.3.4:80`, `2001:db8::1`, `[2001:db8::1]` or `[2001:db8::1]:80`.
fn parse_node(node: &str) -> Option<IpAddr> {
    let node = node.trim();
    node.parse::<IpAddr>()
        .or_else(|_| node.parse::<SocketAddr>().map(|s| s.ip()))
        .or_else(|_| {
            node.trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<IpAddr>()
        })
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().map(|n| n.parse().unwrap()).collect()
    }

    fn xff(peer: &str, values: &[&str], trusted: &[&str]) -> String {
        resolve_client_ip(
            Some(ip(peer)),
            values,
            &nets(trusted),
            ProxyHeader::XForwardedFor,
        )
        .unwrap()
        .to_string()
    }

    #[test]
    fn without_trusted_proxies_the_socket_address_is_the_client() {
        assert_eq!(xff("203.0.113.5", &["6.6.6.6"], &[]), "203.0.113.5");
        assert_eq!(
            xff("203.0.113.5", &["6.6.6.6"], &["127.0.0.1/32"]),
            "203.0.113.5",
            "a peer outside the list is not asked"
        );
    }

    #[test]
    fn the_right_most_untrusted_hop_is_the_client_never_the_left_most() {
        let trusted = ["127.0.0.1/32"];
        assert_eq!(
            xff("127.0.0.1", &["6.6.6.6, 10.0.0.9"], &trusted),
            "10.0.0.9"
        );
        assert_eq!(
            xff("127.0.0.1", &["6.6.6.6", "10.0.0.9"], &trusted),
            "10.0.0.9",
            "several header lines read as one list"
        );
        let both = ["127.0.0.1/32", "10.0.0.0/8"];
        assert_eq!(xff("127.0.0.1", &["6.6.6.6, 10.0.0.9"], &both), "6.6.6.6");
        assert_eq!(xff("127.0.0.1", &["10.0.0.2"], &both), "10.0.0.2");
        assert_eq!(xff("127.0.0.1", &[], &trusted), "127.0.0.1");
        assert_eq!(
            xff("127.0.0.1", &["6.6.6.6, garbage"], &trusted),
            "127.0.0.1",
            "a hop that is no address stops the walk at the last trusted proxy"
        );
        assert_eq!(
            xff("127.0.0.1", &["[2001:db8::7]:443"], &trusted),
            "2001:db8::7"
        );
        assert_eq!(xff("::ffff:127.0.0.1", &["10.0.0.9"], &trusted), "10.0.0.9");
    }

    #[test]
    fn forwarded_for_follows_the_same_rule() {
        let read = |values: &[&str]| {
            resolve_client_ip(
                Some(ip("127.0.0.1")),
                values,
                &nets(&["127.0.0.1/32"]),
                ProxyHeader::Forwarded,
            )
            .unwrap()
            .to_string()
        };
        assert_eq!(
            read(&["for=6.6.6.6, for=\"10.0.0.9:4711\";proto=https"]),
            "10.0.0.9"
        );
        assert_eq!(read(&["for=\"[2001:db8::1]:80\""]), "2001:db8::1");
        assert_eq!(read(&["for=6.6.6.6, for=unknown"]), "127.0.0.1");
    }
}
