//! The webrtc 0.17 API object, configured as WEBRTC-NOTES.md says.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use webrtc::api::setting_engine::SettingEngine;
use webrtc::api::{API, APIBuilder};
use webrtc::ice::mdns::MulticastDnsMode;
use webrtc::ice::udp_mux::{UDPMuxDefault, UDPMuxParams};
use webrtc::ice::udp_network::UDPNetwork;
use webrtc::ice_transport::ice_candidate_type::RTCIceCandidateType;
use webrtc::ice_transport::ice_server::RTCIceServer;
use webrtc::peer_connection::RTCPeerConnection;
use webrtc::peer_connection::configuration::RTCConfiguration;

use super::{RtcConfig, RtcError};

/// Creates peer connections that all share one configuration (and, with `PUBLICIP=ip:port`,
/// one UDP socket).
pub(crate) struct Stack {
    api: API,
    ice_servers: Vec<RTCIceServer>,
}

impl Stack {
    /// Builds the API. Binds the shared UDP socket when `public_ip` has a port.
    pub(crate) async fn new(config: &RtcConfig) -> Result<Self, RtcError> {
        let mut engine = SettingEngine::default();
        // Own read loops: empty and 65,536-byte messages must not close channels.
        engine.detach_data_channels();
        // One multicast socket per peer otherwise.
        engine.set_ice_multicast_dns_mode(MulticastDnsMode::Disabled);
        // Peers that send no candidates (prflx only) would wait 1 s.
        engine.set_prflx_acceptance_min_wait(Some(Duration::ZERO));
        engine.set_include_loopback_candidate(config.include_loopback);
        // IPv6 link-local addresses cannot be bound without a scope id (the stack has none):
        // skip them instead of logging a failed listen per peer.
        engine.set_ip_filter(Box::new(|candidate| !is_ipv6_link_local(candidate)));
        if let Some((ip, port)) = config.public_ip {
            engine.set_nat_1to1_ips(vec![ip.to_string()], RTCIceCandidateType::Host);
            if let Some(port) = port {
                let any = match ip {
                    IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                    IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
                };
                let socket = tokio::net::UdpSocket::bind(SocketAddr::new(any, port)).await?;
                tracing::info!(%ip, port, "ICE UDP mux: all peers on one port");
                let mux = UDPMuxDefault::new(UDPMuxParams::new(socket));
                engine.set_udp_network(UDPNetwork::Muxed(mux));
                // Every local IP becomes a host candidate `ip:port`; two of them are
                // duplicates, and closing the duplicate closes the one muxed connection
                // the agent shares, so no peer ever connects. Gather from one local IP only.
                match mux_local_ip(ip, config.include_loopback) {
                    Some(local) => {
                        tracing::debug!(%local, "ICE UDP mux gathers from one local address");
                        engine.set_ip_filter(Box::new(move |candidate| candidate == local));
                    }
                    None => tracing::warn!(%ip, "no local address of the public IP's family"),
                }
            }
        }
        let api = APIBuilder::new().with_setting_engine(engine).build();
        let ice_servers = config
            .ice_servers
            .iter()
            .map(|s| RTCIceServer {
                urls: s.urls.clone(),
                username: s.username.clone().unwrap_or_default(),
                credential: s.credential.clone().unwrap_or_default(),
            })
            .collect();
        Ok(Self { api, ice_servers })
    }

    /// A new peer connection.
    pub(crate) async fn peer_connection(&self) -> Result<Arc<RTCPeerConnection>, RtcError> {
        let config = RTCConfiguration {
            ice_servers: self.ice_servers.clone(),
            ..Default::default()
        };
        Ok(Arc::new(self.api.new_peer_connection(config).await?))
    }
}

/// The one local address host candidates are gathered from when all peers share a UDP port:
/// the public IP itself if it is local, else the first non-loopback address of its family,
/// else (with `include_loopback`) a loopback one.
fn mux_local_ip(public: IpAddr, include_loopback: bool) -> Option<IpAddr> {
    let usable = |ip: &IpAddr| !ip.is_loopback() || include_loopback;
    let local: Vec<IpAddr> = webrtc::util::ifaces::ifaces()
        .ok()?
        .into_iter()
        .filter_map(|iface| iface.addr.map(|addr| addr.ip()))
        .filter(|ip| ip.is_ipv4() == public.is_ipv4() && !is_ipv6_link_local(*ip))
        .collect();
    if local.contains(&public) && usable(&public) {
        return Some(public);
    }
    local
        .iter()
        .find(|ip| !ip.is_loopback())
        .or_else(|| local.iter().find(|ip| usable(ip)))
        .copied()
}

/// `fe80::/10`: usable only with an interface scope.
fn is_ipv6_link_local(ip: IpAddr) -> bool {
    matches!(ip, IpAddr::V6(v6) if v6.is_unicast_link_local())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_local_v6_is_recognised() {
        let ip = |s: &str| {
            s.parse::<IpAddr>()
                .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
        };
        assert!(is_ipv6_link_local(ip("fe80::1")));
        assert!(is_ipv6_link_local(ip("febf::1")));
        assert!(!is_ipv6_link_local(ip("fec0::1")));
        assert!(!is_ipv6_link_local(ip("2001:db8::1")));
        assert!(!is_ipv6_link_local(ip("::1")));
        assert!(!is_ipv6_link_local(ip("169.254.1.1")));
    }
}
