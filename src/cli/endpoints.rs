//! `loa endpoints [--watch]`: which speakers hear the broadcast, from the
//! typed `EndpointList`, then (with `--watch`) one line per typed
//! `endpoints.changed` notification.
//!
//! Must not touch: daemon state (everything goes through the socket).

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use crate::proto::health::{Endpoint, EndpointChange, EndpointList, EndpointsParams, EndpointState};
use crate::proto::request::{EndpointsList, EndpointsSubscribe};
use crate::proto::text::humanize;

use super::args::{EndpointsArgs, Global};
use super::client::{Client, Notification};
use super::table::table;
use super::{call_and_print, fail, TIMEOUT};

pub fn run(args: EndpointsArgs, global: &Global) -> ExitCode {
    let params = EndpointsParams { zone: args.zone };
    if args.watch {
        watch(EndpointsSubscribe(params), global)
    } else {
        call_and_print(global, &EndpointsList(params), endpoints_text)
    }
}

/// `--watch`: the table, then one line per state change until Ctrl-C. With
/// `--json` every line is one JSON object (the list, then each change),
/// for scripts that read lines.
fn watch(params: EndpointsSubscribe, global: &Global) -> ExitCode {
    let mut client = match Client::connect(&global.socket(), TIMEOUT) {
        Ok(c) => c,
        Err(e) => return fail(e),
    };
    let zone = params.0.zone.clone();
    match client.call(&params) {
        Ok(list) if global.json => println!("{}", one_line(&list)),
        Ok(list) => print!("{}", endpoints_text(&list)),
        Err(e) => return fail(e),
    }
    let _ = std::io::stdout().flush();
    loop {
        let change = match client.next_notification() {
            Ok(Notification::EndpointChanged(change)) => change,
            // Not this subscription's (a newer daemon's): nothing to show.
            Ok(_) => continue,
            Err(e) => return fail(e),
        };
        if zone.as_deref().is_some_and(|z| change.zone != z) {
            continue;
        }
        if global.json {
            println!("{}", one_line(&change));
        } else {
            println!("{}", change_line(&change));
        }
        let _ = std::io::stdout().flush();
    }
}

fn one_line(value: &impl serde::Serialize) -> String {
    serde_json::to_string(value).expect("protocol types serialize")
}

/// `AT  ENDPOINT (ADDRESS) in ZONE: FROM → TO  DETAIL`
pub fn change_line(c: &EndpointChange) -> String {
    format!("{}  {} ({}) in {}: {} → {}  {}", c.at, c.endpoint, c.address, c.zone, c.from, c.to, c.detail)
}

fn num(v: Option<f64>) -> String {
    v.map(|x| format!("{x:.1}")).unwrap_or_else(|| "-".into())
}

fn secs(v: Option<f64>) -> Option<Duration> {
    v.and_then(|s| Duration::try_from_secs_f64(s).ok())
}

fn row(e: &Endpoint) -> Vec<String> {
    vec![
        e.name.clone(),
        e.zone.clone(),
        e.transport.map_or_else(|| "-".into(), |t| t.to_string()),
        e.address.clone(),
        match e.state {
            EndpointState::Unregistered => "UNREGISTERED".into(),
            state => state.to_string(),
        },
        secs(e.since_secs).map(humanize).unwrap_or_default(),
        num(e.loss_pct),
        num(e.jitter_ms),
        num(e.rtt_ms),
        secs(e.last_report_secs).map(|d| format!("{}s ago", d.as_secs())).unwrap_or_else(|| "never".into()),
    ]
}

pub fn endpoints_text(v: &EndpointList) -> String {
    if v.endpoints.is_empty() {
        return "no endpoints listed in the config and none heard\n".into();
    }
    let rows: Vec<Vec<String>> = v.endpoints.iter().map(row).collect();
    let mut out = table(
        &["ENDPOINT", "ZONE", "TRANSPORT", "ADDRESS", "STATE", "SINCE", "LOSS %", "JITTER ms", "RTT ms", "LAST REPORT"],
        &rows,
    );
    if v.endpoints.iter().any(|e| e.state == EndpointState::Unregistered) {
        out += "\nUNREGISTERED: reports from addresses not in the inventory — check who is listening\n";
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::health::SpeakerTransport;

    fn endpoint(name: &str, address: &str, state: EndpointState) -> Endpoint {
        Endpoint {
            zone: "thon-1".into(),
            name: name.into(),
            address: address.into(),
            state,
            since_secs: Some(200.4),
            loss_pct: Some(0.0),
            jitter_ms: Some(1.3),
            rtt_ms: None,
            last_report_secs: Some(2.7),
            registered: state != EndpointState::Unregistered,
            cname: None,
            transport: (state != EndpointState::Unregistered).then_some(SpeakerTransport::Multicast),
            joined: false,
        }
    }

    #[test]
    fn endpoints_show_state_loss_jitter_and_flag_an_unregistered_reporter() {
        let mut silent = endpoint("loa-dinh", "127.0.0.4", EndpointState::Unknown);
        silent.since_secs = None;
        silent.loss_pct = None;
        silent.jitter_ms = None;
        silent.last_report_secs = None;
        let list = EndpointList {
            endpoints: vec![
                endpoint("loa-cho", "127.0.0.2", EndpointState::Online),
                silent,
                endpoint("127.0.0.9", "127.0.0.9", EndpointState::Unregistered),
            ],
        };
        let text = endpoints_text(&list);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "ENDPOINT   ZONE    TRANSPORT  ADDRESS    STATE         SINCE   LOSS %  JITTER ms  RTT ms  LAST REPORT");
        assert_eq!(lines[1], "loa-cho    thon-1  multicast  127.0.0.2  online        3m 20s  0.0     1.3        -       2s ago");
        assert_eq!(lines[2], "loa-dinh   thon-1  multicast  127.0.0.4  unknown               -       -          -       never");
        assert_eq!(lines[3], "127.0.0.9  thon-1  -          127.0.0.9  UNREGISTERED  3m 20s  0.0     1.3        -       2s ago");
        assert!(text.ends_with("\nUNREGISTERED: reports from addresses not in the inventory — check who is listening\n"), "{text}");
    }

    #[test]
    fn joined_speakers_behind_one_nat_show_by_name_with_their_public_port_and_no_warning() {
        let joined = |name: &str, address: &str, state| Endpoint {
            transport: Some(SpeakerTransport::Unicast),
            joined: true,
            ..endpoint(name, address, state)
        };
        let list = EndpointList {
            endpoints: vec![
                joined("xa-dong", "203.0.113.1:40001", EndpointState::Online),
                joined("xa-tay", "203.0.113.1:40002", EndpointState::Offline),
            ],
        };
        let text = endpoints_text(&list);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[1], "xa-dong   thon-1  unicast    203.0.113.1:40001  online   3m 20s  0.0     1.3        -       2s ago");
        assert_eq!(lines[2], "xa-tay    thon-1  unicast    203.0.113.1:40002  offline  3m 20s  0.0     1.3        -       2s ago");
        assert_eq!(lines.len(), 3, "{text}");
    }

    #[test]
    fn no_endpoints_says_so_and_a_registered_list_has_no_warning() {
        assert_eq!(endpoints_text(&EndpointList { endpoints: vec![] }), "no endpoints listed in the config and none heard\n");
        let list = EndpointList { endpoints: vec![endpoint("loa-cho", "127.0.0.2", EndpointState::Degraded)] };
        assert!(!endpoints_text(&list).contains("UNREGISTERED"));
    }

    #[test]
    fn a_state_change_is_one_line() {
        let change = EndpointChange {
            zone: "thon-1".into(),
            endpoint: "loa-cho".into(),
            address: "127.0.0.3".into(),
            from: EndpointState::Online,
            to: EndpointState::Offline,
            detail: "no report for 15 s".into(),
            at: "2026-12-04T06:00:00+07:00".into(),
        };
        assert_eq!(change_line(&change), "2026-12-04T06:00:00+07:00  loa-cho (127.0.0.3) in thon-1: online → offline  no report for 15 s");
    }
}
