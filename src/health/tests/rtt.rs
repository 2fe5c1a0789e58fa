//! Round-trip time from LSR and DLSR (RFC 3550 §6.4.1).

use super::*;

#[test]
fn rtt_from_lsr_and_dlsr_follows_rfc3550_example() {
    // RFC 3550 §6.4.1, figure 2: A = 46864.500 s, LSR = 46853.125 s,
    // DLSR = 5.250 s, so the round trip is 0x0006:2000 = 6.125 s.
    let t0 = Instant::now();
    let mut m = monitor(t0);
    let mut r = report(
        "thon-1",
        1,
        vec![ReportBlock {
            last_sender_report: 0xb705_2000,
            delay_since_last_sender_report: 0x0005_4000,
            ..block(0, 0)
        }],
    );
    r.arrival_ntp_mid32 = 0xb710_8000;
    m.handle_report(t0, r);
    assert_eq!(status(&m, "thon-1", "a").rtt_ms, Some(6125.0));
}

#[test]
fn rtt_is_skipped_without_sender_report_or_when_negative() {
    let t0 = Instant::now();
    let mut m = monitor(t0);
    let mut r = report("thon-1", 1, vec![block(0, 0)]);
    r.arrival_ntp_mid32 = 0xb710_8000;
    m.handle_report(t0, r.clone());
    assert_eq!(status(&m, "thon-1", "a").rtt_ms, None);

    // LSR in the future, and a delay longer than the time since the SR.
    r.blocks[0].last_sender_report = 0xb711_0000;
    m.handle_report(t0, r.clone());
    r.blocks[0].last_sender_report = 0xb710_0000;
    r.blocks[0].delay_since_last_sender_report = 0x0001_0000;
    m.handle_report(t0, r);
    assert_eq!(status(&m, "thon-1", "a").rtt_ms, None);
}

#[test]
fn rtt_survives_ntp_wrap() {
    let t0 = Instant::now();
    let mut m = monitor(t0);
    let mut r = report(
        "thon-1",
        1,
        vec![ReportBlock {
            last_sender_report: 0xffff_8000, // half a second before the wrap
            delay_since_last_sender_report: 0x0000_4000,
            ..block(0, 0)
        }],
    );
    r.arrival_ntp_mid32 = 0x0000_4000; // a quarter second after it
    m.handle_report(t0, r);
    assert_eq!(status(&m, "thon-1", "a").rtt_ms, Some(500.0));
}
