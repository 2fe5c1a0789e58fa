//! Health monitor behaviour with made-up instants, and probe executors
//! against loopback listeners started by the tests themselves. One file per
//! topic under `tests/`; the helpers they share are here.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use super::*;
use crate::rtp::rtcp::ReportBlock;

mod inventory;
mod joined;
mod own_rtcp;
mod probes;
mod probing;
mod quality;
mod rtt;
mod silence;
mod unauthenticated;
mod unregistered;

const OUR_SSRC: u32 = 0x1234_5678;

fn ip(last: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, last))
}

fn secs(t0: Instant, s: f64) -> Instant {
    t0 + Duration::from_secs_f64(s)
}

fn spec(zone: &str, name: &str, last: u8) -> EndpointSpec {
    EndpointSpec {
        zone: zone.into(),
        name: name.into(),
        address: ip(last),
        probe: Probe::Rtcp,
        probe_interval: Duration::from_secs(10),
        probe_timeout: Duration::from_secs(2),
    }
}

fn tcp_spec(zone: &str, name: &str, last: u8) -> EndpointSpec {
    EndpointSpec {
        probe: Probe::Tcp { port: 80 },
        ..spec(zone, name, last)
    }
}

fn block(fraction_lost: u8, jitter_units: u32) -> ReportBlock {
    ReportBlock {
        ssrc: OUR_SSRC,
        fraction_lost,
        cumulative_lost: 0,
        extended_sequence_number: 1000,
        interarrival_jitter: jitter_units,
        last_sender_report: 0,
        delay_since_last_sender_report: 0,
    }
}

fn report(zone: &str, last: u8, blocks: Vec<ReportBlock>) -> Report {
    Report {
        zone: zone.into(),
        from: SocketAddr::new(ip(last), 5005),
        reporter_ssrc: 0xabcd,
        cname: Some(format!("speaker@{}", ip(last))),
        blocks,
        arrival_ntp_mid32: 0,
        joined: None,
    }
}

/// A monitor for zone "thon-1" with speakers "a" (.1) and "b" (.2), our SSRC set.
fn monitor(t0: Instant) -> HealthMonitor {
    let mut m = HealthMonitor::new(
        HealthConfig::default(),
        vec![spec("thon-1", "a", 1), spec("thon-1", "b", 2)],
        t0,
    );
    m.set_zone_ssrc("thon-1", OUR_SSRC);
    m
}

fn events(m: &mut HealthMonitor) -> Vec<HealthEvent> {
    std::iter::from_fn(|| m.poll_event()).collect()
}

fn transitions(m: &mut HealthMonitor) -> Vec<(String, State, State)> {
    events(m)
        .into_iter()
        .map(|e| (e.endpoint, e.from, e.to))
        .collect()
}

fn status(m: &HealthMonitor, zone: &str, name: &str) -> EndpointStatus {
    m.snapshot()
        .into_iter()
        .find(|s| s.zone == zone && s.name == name)
        .expect("endpoint in snapshot")
}

fn ten_percent() -> u8 {
    26 // 26/256 = 10.2 %
}

fn jitter_ms(ms: u32) -> u32 {
    ms * 48 // 48 kHz timestamp units
}
