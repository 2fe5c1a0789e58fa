use super::*;
use crate::rtp::rtcp::{parse_compound, RtcpPacket};
use std::time::UNIX_EPOCH;

const C: f64 = COMPENSATION;

fn config() -> SessionConfig {
    SessionConfig {
        ssrc: 0xDEAD_BEEF,
        initial_seq: 100,
        initial_timestamp: 1_000,
        payload_type: 96,
        cname: "loa@127.0.0.1".into(),
        session_bandwidth_bps: 48_000,
        rng_seed: 1,
    }
}

/// (marker, payload type, seq, timestamp, ssrc)
fn header(packet: &[u8]) -> (bool, u8, u16, u32, u32) {
    let r = rtp_rs::RtpReader::new(packet).unwrap();
    (
        r.mark(),
        r.payload_type(),
        u16::from(r.sequence_number()),
        r.timestamp(),
        r.ssrc(),
    )
}

/// Sends frames at the given media times and returns their headers.
fn send(s: &mut Session, t0: Instant, media: &[u64]) -> Vec<(bool, u8, u16, u32, u32)> {
    let mut out = Vec::new();
    media
        .iter()
        .map(|&m| {
            s.handle_frame(t0, m, 960, &[0], &mut out);
            header(&out)
        })
        .collect()
}

/// Calls `poll_rtcp` at each timeout until a report goes out (timer
/// reconsideration may postpone it); returns when it went out.
fn next_report(s: &mut Session, out: &mut Vec<u8>) -> Instant {
    loop {
        let due = s.poll_timeout().expect("reports are scheduled");
        if s.poll_rtcp(due, UNIX_EPOCH, out) {
            return due;
        }
    }
}

#[test]
fn a_withdrawn_packet_gives_back_its_number_and_the_next_one_is_marked() {
    let t0 = Instant::now();
    let mut cfg = config();
    cfg.initial_seq = 100;
    let mut s = Session::new(cfg, t0);
    let mut out = Vec::new();
    s.handle_frame(t0, 0, 960, &[1; 10], &mut out);
    // Two frames that could not be sent.
    for media in [960, 1920] {
        s.handle_frame(t0, media, 960, &[2; 20], &mut out);
        s.withdraw_last(media, 20);
    }
    s.handle_frame(t0, 2880, 960, &[3; 30], &mut out);
    let seq = u16::from_be_bytes([out[2], out[3]]);
    assert_eq!(seq, 101, "no sequence gap");
    assert_eq!(out[1] & 0x80, 0x80, "marker after the pause");
    let ts = u32::from_be_bytes([out[4], out[5], out[6], out[7]]);
    let ts0 = s.cfg.initial_timestamp;
    assert_eq!(ts.wrapping_sub(ts0), 2880, "the media clock ran on");
    assert_eq!((s.packets_sent, s.octets_sent), (2, 40));
}

#[test]
fn rtp_header_is_byte_exact() {
    let t0 = Instant::now();
    let mut cfg = config();
    cfg.initial_seq = 0xFFFE;
    cfg.initial_timestamp = 0xFFFF_FC40;
    let mut s = Session::new(cfg, t0);
    let mut out = Vec::new();
    s.handle_frame(t0, 0, 960, &[0xAA, 0xBB, 0xCC], &mut out);
    #[rustfmt::skip]
    assert_eq!(
        out,
        [
            0x80,                   // V=2, P=0, X=0, CC=0
            0xE0,                   // M=1 (first packet), PT=96
            0xFF, 0xFE,             // seq 65534
            0xFF, 0xFF, 0xFC, 0x40, // timestamp
            0xDE, 0xAD, 0xBE, 0xEF, // SSRC
            0xAA, 0xBB, 0xCC,       // Opus payload, untouched
        ]
    );
    s.handle_frame(t0, 960, 960, &[0x01], &mut out);
    #[rustfmt::skip]
    assert_eq!(
        out,
        [
            0x80,
            0x60,                   // M=0 (contiguous), PT=96
            0xFF, 0xFF,             // seq 65535
            0x00, 0x00, 0x00, 0x00, // timestamp wrapped
            0xDE, 0xAD, 0xBE, 0xEF,
            0x01,
        ]
    );
}

#[test]
fn payload_type_is_taken_from_the_config() {
    let t0 = Instant::now();
    let mut cfg = config();
    cfg.payload_type = 127;
    let mut s = Session::new(cfg, t0);
    let got = send(&mut s, t0, &[0, 960]);
    assert_eq!((got[0].0, got[0].1), (true, 127));
    assert_eq!((got[1].0, got[1].1), (false, 127));
}

#[test]
fn sequence_number_wraps_from_65535_to_0() {
    let t0 = Instant::now();
    let mut cfg = config();
    cfg.initial_seq = 65_534;
    let mut s = Session::new(cfg, t0);
    let seqs: Vec<u16> = send(&mut s, t0, &[0, 960, 1920, 2880])
        .iter()
        .map(|h| h.2)
        .collect();
    assert_eq!(seqs, [65_534, 65_535, 0, 1]);
}

#[test]
fn timestamp_wraps_modulo_2_32_without_a_marker() {
    let t0 = Instant::now();
    let mut cfg = config();
    cfg.initial_timestamp = u32::MAX - 959; // 960 samples before wrapping
    let mut s = Session::new(cfg, t0);
    let got = send(&mut s, t0, &[0, 960, 1920]);
    let ts: Vec<u32> = got.iter().map(|h| h.3).collect();
    assert_eq!(ts, [u32::MAX - 959, 0, 960]);
    let marks: Vec<bool> = got.iter().map(|h| h.0).collect();
    assert_eq!(marks, [true, false, false], "a wrap is not a gap");
}

#[test]
fn a_pause_shows_as_a_timestamp_jump_with_marker_and_no_seq_gap() {
    let t0 = Instant::now();
    let mut s = Session::new(config(), t0);
    let got = send(&mut s, t0, &[0, 960, 1920, 48_000 * 3, 48_000 * 3 + 960]);
    let seqs: Vec<u16> = got.iter().map(|h| h.2).collect();
    let ts: Vec<u32> = got.iter().map(|h| h.3).collect();
    let marks: Vec<bool> = got.iter().map(|h| h.0).collect();
    assert_eq!(seqs, [100, 101, 102, 103, 104]);
    assert_eq!(ts, [1_000, 1_960, 2_920, 145_000, 145_960]);
    assert_eq!(marks, [true, false, false, true, false]);
    assert!(
        got.iter().all(|h| h.4 == 0xDEAD_BEEF),
        "one SSRC for the session's life"
    );
}

#[test]
fn contiguity_follows_each_frames_own_duration() {
    // 40 ms frames then 20 ms frames: contiguous as long as each starts
    // where the previous one ended.
    let t0 = Instant::now();
    let mut s = Session::new(config(), t0);
    let mut out = Vec::new();
    let mut marks = Vec::new();
    for (media, frame) in [
        (0, 1920),
        (1920, 1920),
        (3840, 960),
        (4800, 960),
        (4801, 960),
    ] {
        s.handle_frame(t0, media, frame, &[0], &mut out);
        marks.push(header(&out).0);
    }
    assert_eq!(marks, [true, false, false, false, true]);
}

#[test]
fn packets_reuse_the_output_buffer() {
    let t0 = Instant::now();
    let mut s = Session::new(config(), t0);
    let mut out = Vec::with_capacity(1500);
    let ptr = out.as_ptr();
    for n in 0..50u64 {
        s.handle_frame(t0, n * 960, 960, &[7; 200], &mut out);
        assert_eq!(out.len(), 12 + 200);
    }
    assert_eq!(out.as_ptr(), ptr, "no reallocation");
}

#[test]
fn counts_packets_and_payload_octets_for_the_sender_report() {
    let t0 = Instant::now();
    let mut s = Session::new(config(), t0);
    let mut out = Vec::new();
    s.handle_frame(t0, 0, 960, &[0; 80], &mut out);
    s.handle_frame(t0, 960, 960, &[0; 70], &mut out);
    assert_eq!((s.packets_sent(), s.octets_sent()), (2, 150));
}

#[test]
fn rtcp_interval_is_the_compensated_minimum_for_a_lone_sender() {
    let bw = 48_000.0 * 0.05 / 8.0; // 300 octets/s
    let t = rtcp_interval(1, 1, bw, true, 100.0, false, 1.0);
    assert!((t - 5.0 / C).abs() < 1e-12, "{t}");
    assert!((5.0 / C - 4.104_141).abs() < 1e-6);
}

#[test]
fn rtcp_interval_halves_the_minimum_before_the_first_report() {
    let t = rtcp_interval(1, 1, 300.0, true, 100.0, true, 1.0);
    assert!((t - 2.5 / C).abs() < 1e-12, "{t}");
}

#[test]
fn rtcp_interval_scales_with_the_random_factor() {
    let lo = rtcp_interval(1, 1, 300.0, true, 100.0, false, 0.5);
    let hi = rtcp_interval(1, 1, 300.0, true, 100.0, false, 1.5);
    assert!(
        (lo - 2.5 / C).abs() < 1e-12 && (hi - 7.5 / C).abs() < 1e-12,
        "{lo} {hi}"
    );
}

#[test]
fn rtcp_interval_gives_few_senders_a_quarter_of_the_bandwidth() {
    // 2 senders of 100 members, 100 octets/s: senders share 25 octets/s,
    // so 2 × 200 octets take 16 s.
    let t = rtcp_interval(100, 2, 100.0, true, 200.0, false, 1.0);
    assert!((t - 16.0 / C).abs() < 1e-9, "{t}");
    // The 98 receivers share the other 75: 98 × 200 / 75.
    let t = rtcp_interval(100, 2, 100.0, false, 200.0, false, 1.0);
    assert!((t - 98.0 * 200.0 / 75.0 / C).abs() < 1e-9, "{t}");
}

#[test]
fn rtcp_interval_shares_all_bandwidth_when_senders_are_many() {
    // 1 sender of 2 members is more than a quarter: everyone shares the
    // whole 10 octets/s, 2 × 100 / 10 = 20 s.
    let t = rtcp_interval(2, 1, 10.0, true, 100.0, false, 1.0);
    assert!((t - 20.0 / C).abs() < 1e-9, "{t}");
}

#[test]
fn rtcp_interval_falls_back_to_the_minimum_without_bandwidth() {
    let t = rtcp_interval(1, 1, 0.0, true, 100.0, false, 1.0);
    assert!((t - 5.0 / C).abs() < 1e-12, "{t}");
}

#[test]
fn first_report_is_due_at_half_the_minimum_times_the_seeded_factor() {
    let t0 = Instant::now();
    let s = Session::new(config(), t0);
    let factor: f64 = SmallRng::seed_from_u64(config().rng_seed).random_range(0.5..=1.5);
    let expected = 2.5 * factor / C;
    let first = (s.poll_timeout().unwrap() - t0).as_secs_f64();
    assert!((first - expected).abs() < 1e-6, "{first} vs {expected}");
    assert!((1.25 / C..=3.75 / C).contains(&first));
}

#[test]
fn different_seeds_draw_different_first_reports() {
    let t0 = Instant::now();
    let due: Vec<Instant> = (0..8)
        .map(|seed| {
            let mut cfg = config();
            cfg.rng_seed = seed;
            Session::new(cfg, t0).poll_timeout().unwrap()
        })
        .collect();
    assert!(due.windows(2).any(|w| w[0] != w[1]), "{due:?}");
}

#[test]
fn nothing_is_sent_before_the_timer_expires() {
    let t0 = Instant::now();
    let mut s = Session::new(config(), t0);
    let mut out = Vec::new();
    let due = s.poll_timeout().unwrap();
    assert!(!s.poll_rtcp(due - Duration::from_millis(1), UNIX_EPOCH, &mut out));
    assert_eq!(s.poll_timeout(), Some(due));
}

#[test]
fn later_reports_are_scheduled_within_the_randomised_five_second_window() {
    let t0 = Instant::now();
    for seed in 0..20 {
        let mut cfg = config();
        cfg.rng_seed = seed;
        let mut s = Session::new(cfg, t0);
        let mut out = Vec::new();
        s.handle_frame(t0, 0, 960, &[0; 80], &mut out);
        let sent = next_report(&mut s, &mut out);
        assert!((sent - t0).as_secs_f64() <= 3.75 / C + 1e-6);
        let next = (s.poll_timeout().unwrap() - sent).as_secs_f64();
        assert!(
            (2.5 / C - 1e-6..=7.5 / C + 1e-6).contains(&next),
            "seed {seed}: {next}"
        );
    }
}

#[test]
fn reports_average_five_seconds_with_timer_reconsideration() {
    let t0 = Instant::now();
    let mut s = Session::new(config(), t0);
    let mut out = Vec::new();
    let mut media = 0;
    let mut sent = Vec::new();
    for _ in 0..3_000 {
        // Keep sending so every report is an SR.
        let due = s.poll_timeout().unwrap();
        s.handle_frame(due, media, 960, &[0; 80], &mut out);
        media += 960;
        if s.poll_rtcp(due, UNIX_EPOCH, &mut out) {
            sent.push(due);
        }
    }
    let gaps: Vec<f64> = sent
        .windows(2)
        .map(|w| (w[1] - w[0]).as_secs_f64())
        .collect();
    let mean = gaps.iter().sum::<f64>() / gaps.len() as f64;
    // The e − 3/2 compensation makes reconsideration average Td = 5 s.
    assert!(
        (mean - 5.0).abs() < 0.1,
        "mean interval {mean} over {} reports",
        gaps.len()
    );
    for gap in gaps {
        assert!(
            (2.5 / C - 1e-6..=7.5 / C + 1e-6).contains(&gap),
            "interval {gap}"
        );
    }
}

#[test]
fn average_rtcp_size_follows_rfc3550_6_3_3() {
    let t0 = Instant::now();
    let mut s = Session::new(config(), t0);
    let mut out = Vec::new();
    // SR (28) + SDES with "loa@127.0.0.1" (24) + UDP/IP (28).
    assert_eq!(s.avg_rtcp_size, 80.0);
    next_report(&mut s, &mut out); // no RTP yet: RR (8) + SDES (24)
    assert_eq!(out.len(), 32);
    assert_eq!(s.avg_rtcp_size, 80.0 * 15.0 / 16.0 + (32.0 + 28.0) / 16.0);
}

#[test]
fn sender_report_maps_now_onto_the_packet_timeline() {
    let t0 = Instant::now();
    let mut cfg = config();
    cfg.initial_timestamp = u32::MAX - 10;
    let mut s = Session::new(cfg, t0);
    let mut out = Vec::new();
    s.handle_frame(t0, 0, 960, &[0; 10], &mut out);
    let due = s.poll_timeout().unwrap();
    let wall = UNIX_EPOCH + Duration::from_secs(1_700_000_000) + Duration::from_millis(250);
    let sent = loop {
        let due = s.poll_timeout().unwrap();
        if s.poll_rtcp(due, wall, &mut out) {
            break due;
        }
    };
    assert!(sent >= due);
    let packets = parse_compound(&out).unwrap();
    let RtcpPacket::SenderReport {
        ssrc,
        info,
        reports,
    } = &packets[0]
    else {
        panic!("expected an SR first: {packets:?}");
    };
    assert_eq!(*ssrc, 0xDEAD_BEEF);
    assert!(reports.is_empty());
    // Same timeline as media_samples: a frame due at `sent` would carry
    // exactly this timestamp.
    let samples = ((sent - t0).as_nanos() * 48_000 / 1_000_000_000) as u32;
    assert_eq!(info.rtp_timestamp, (u32::MAX - 10).wrapping_add(samples));
    assert_eq!(
        info.ntp_time,
        ((1_700_000_000 + 2_208_988_800) << 32) | 0x4000_0000
    );
    assert_eq!((info.packet_count, info.octet_count), (1, 10));
    assert_eq!(
        packets[1],
        RtcpPacket::Sdes {
            cnames: vec![(0xDEAD_BEEF, "loa@127.0.0.1".into())]
        }
    );
}

#[test]
fn a_session_that_has_not_sent_reports_as_a_receiver() {
    let t0 = Instant::now();
    let mut s = Session::new(config(), t0);
    let mut out = Vec::new();
    next_report(&mut s, &mut out);
    assert!(
        matches!(parse_compound(&out).unwrap()[..], [RtcpPacket::ReceiverReport { ref reports, .. }, RtcpPacket::Sdes { .. }] if reports.is_empty())
    );
}

#[test]
fn a_session_that_stopped_sending_reports_as_a_receiver_after_two_intervals() {
    let t0 = Instant::now();
    let mut s = Session::new(config(), t0);
    let mut out = Vec::new();
    s.handle_frame(t0, 0, 960, &[0; 10], &mut out);
    let mut kinds = Vec::new();
    let mut last = t0;
    for _ in 0..4 {
        last = next_report(&mut s, &mut out);
        kinds.push(out[1]);
    }
    // Sent before the first report: SR then, and still at the second
    // ("since the last report or the one prior", §6.4); RR afterwards.
    assert_eq!(kinds, [200, 200, 201, 201]);
    // Sending again makes the next report an SR.
    s.handle_frame(last, 48_000 * 30, 960, &[0; 10], &mut out);
    next_report(&mut s, &mut out);
    assert_eq!(out[1], 200);
    assert!(
        !s.poll_rtcp(last, UNIX_EPOCH, &mut out),
        "nothing due right after a report"
    );
}

#[test]
fn bye_is_a_compound_ending_in_bye() {
    let t0 = Instant::now();
    let mut s = Session::new(config(), t0);
    let mut out = Vec::new();
    s.handle_frame(t0, 0, 960, &[0; 10], &mut out);
    s.bye(
        t0 + Duration::from_millis(20),
        UNIX_EPOCH,
        Some("zone removed"),
        &mut out,
    );
    let packets = parse_compound(&out).unwrap();
    assert!(matches!(packets[0], RtcpPacket::SenderReport { .. }));
    assert!(matches!(packets[1], RtcpPacket::Sdes { .. }));
    assert_eq!(
        packets[2],
        RtcpPacket::Bye {
            ssrcs: vec![0xDEAD_BEEF],
            reason: Some("zone removed".into())
        }
    );
}

#[test]
fn bye_from_a_silent_session_starts_with_a_receiver_report() {
    let t0 = Instant::now();
    let mut s = Session::new(config(), t0);
    let mut out = Vec::new();
    s.bye(t0, UNIX_EPOCH, None, &mut out);
    let packets = parse_compound(&out).unwrap();
    assert!(matches!(packets[0], RtcpPacket::ReceiverReport { .. }));
    assert_eq!(
        packets[2],
        RtcpPacket::Bye {
            ssrcs: vec![0xDEAD_BEEF],
            reason: None
        }
    );
}

#[test]
fn no_reports_follow_a_bye() {
    let t0 = Instant::now();
    let mut s = Session::new(config(), t0);
    let mut out = Vec::new();
    s.bye(t0, UNIX_EPOCH, None, &mut out);
    assert_eq!(s.poll_timeout(), None);
    assert!(!s.poll_rtcp(t0 + Duration::from_secs(60), UNIX_EPOCH, &mut out));
}
