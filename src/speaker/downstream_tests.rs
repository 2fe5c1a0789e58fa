use super::*;

const KEEPALIVE: Duration = Duration::from_secs(15);

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Everything `poll` says at `now`, in order.
fn drain(d: &mut Downstream, now: Instant) -> Vec<Action> {
    std::iter::from_fn(|| d.poll(now)).collect()
}

/// Verified audio every 20 ms from `from` until `until` (excluded).
fn play(d: &mut Downstream, from: Instant, until: Instant) {
    let mut at = from;
    while at < until {
        d.audio(at);
        assert_eq!(d.poll(at), None, "nothing to do while audio comes");
        at += ms(20);
    }
}

#[test]
fn an_answered_keepalive_needs_nothing_more() {
    let t0 = Instant::now();
    let mut d = Downstream::new(false);
    d.keepalive_sent(t0);
    assert_eq!(d.poll_timeout(), Some(t0 + PROBE_EVERY));
    d.answered(t0 + ms(60));
    assert_eq!(d.poll_timeout(), None);
    assert_eq!(drain(&mut d, t0 + KEEPALIVE), []);
}

#[test]
fn an_unanswered_keepalive_is_sent_again_every_quarter_second_and_then_tls_is_asked_for_within_a_second() {
    let t0 = Instant::now();
    let mut d = Downstream::new(false);
    d.keepalive_sent(t0);
    assert_eq!(d.poll(t0 + ms(249)), None);
    assert_eq!(d.poll(t0 + ms(250)), Some(Action::Probe));
    assert_eq!(d.poll(t0 + ms(251)), None, "one probe at a time");
    assert_eq!(d.poll(t0 + ms(500)), Some(Action::Probe));
    assert_eq!(d.poll(t0 + ms(750)), Some(Action::Probe));
    assert_eq!(d.poll_timeout(), Some(t0 + ANSWER_WITHIN), "the first keepalive's time is up before the next probe");
    assert_eq!(d.poll(t0 + ms(999)), None);
    assert_eq!(drain(&mut d, t0 + ANSWER_WITHIN), [Action::Ask { udp: false }]);
    assert!(d.said_down());
    // Asked once: loa moves it; more silence asks nothing more.
    d.keepalive_sent(t0 + KEEPALIVE);
    assert_eq!(drain(&mut d, t0 + KEEPALIVE + ANSWER_WITHIN * 2), []);
}

#[test]
fn the_answer_to_any_probe_answers_the_keepalive() {
    let t0 = Instant::now();
    let mut d = Downstream::new(false);
    d.keepalive_sent(t0);
    assert_eq!(d.poll(t0 + ms(250)), Some(Action::Probe));
    assert_eq!(d.poll(t0 + ms(500)), Some(Action::Probe));
    d.answered(t0 + ms(560));
    assert_eq!(drain(&mut d, t0 + ANSWER_WITHIN * 3), []);
    assert!(!d.said_down());
}

#[test]
fn audio_that_stops_by_unicast_is_probed_at_once_and_tls_asked_for_within_gap_and_answer_time() {
    let t0 = Instant::now();
    let mut d = Downstream::new(false);
    d.keepalive_sent(t0);
    d.answered(t0 + ms(40));
    let stopped = t0 + ms(5_000);
    play(&mut d, t0, stopped);
    let last = stopped - ms(20);
    assert_eq!(d.poll_timeout(), Some(last + GAP));
    assert_eq!(d.poll(last + GAP - ms(1)), None);
    assert_eq!(d.poll(last + GAP), Some(Action::Probe));
    // No answer, no audio: the probes go on, then TLS is asked for.
    let mut asked = None;
    let mut at = last + GAP;
    while asked.is_none() && at < last + KEEPALIVE {
        at += ms(10);
        if let Some(Action::Ask { udp }) = d.poll(at) {
            asked = Some((udp, at));
        }
    }
    assert_eq!(asked, Some((false, last + GAP + ANSWER_WITHIN)), "the bound: {GAP:?} + {ANSWER_WITHIN:?} after the last packet");
}

#[test]
fn a_zone_that_goes_idle_costs_one_answered_keepalive() {
    let t0 = Instant::now();
    let mut d = Downstream::new(false);
    play(&mut d, t0, t0 + ms(1_000));
    let last = t0 + ms(980);
    assert_eq!(d.poll(last + GAP), Some(Action::Probe));
    d.answered(last + GAP + ms(50));
    assert_eq!(d.poll_timeout(), None, "idle: nothing more until audio comes again");
    assert_eq!(drain(&mut d, last + KEEPALIVE), []);
    // The next programme's end is probed again.
    play(&mut d, last + KEEPALIVE, last + KEEPALIVE + ms(100));
    assert_eq!(d.poll(last + KEEPALIVE + ms(80) + GAP), Some(Action::Probe));
}

#[test]
fn verified_audio_by_unicast_counts_as_an_answer() {
    let t0 = Instant::now();
    let mut d = Downstream::new(false);
    d.keepalive_sent(t0);
    // The answer is lost, the zone plays on: UDP plainly works.
    play(&mut d, t0 + ms(30), t0 + ANSWER_WITHIN * 3);
    assert!(!d.said_down());
}

#[test]
fn inside_tls_after_asking_an_answered_keepalive_is_confirmed_at_once_and_then_unicast_asked_for() {
    let t0 = Instant::now();
    let mut d = Downstream::new(false);
    d.keepalive_sent(t0);
    assert_eq!(drain(&mut d, t0 + ANSWER_WITHIN), [Action::Ask { udp: false }]);
    d.transport(true, t0 + ANSWER_WITHIN);
    // Audio inside TLS says nothing of UDP.
    d.keepalive_sent(t0 + KEEPALIVE);
    play(&mut d, t0 + KEEPALIVE, t0 + KEEPALIVE + ANSWER_WITHIN);
    assert_eq!(drain(&mut d, t0 + KEEPALIVE + ANSWER_WITHIN), [], "unanswered inside TLS: no probes, no asks");
    // One answered, its confirmation not: nothing asked.
    let k = |n: u32| t0 + KEEPALIVE * n;
    d.keepalive_sent(k(2));
    d.answered(k(2) + ms(50));
    assert_eq!(d.poll_timeout(), Some(k(2) + ms(50)));
    assert_eq!(drain(&mut d, k(2) + ms(50)), [Action::Probe], "one answer is not yet steady: once more, at once");
    assert_eq!(drain(&mut d, k(2) + ms(50) + ANSWER_WITHIN), []);
    // Answered, and its confirmation too: unicast again.
    d.keepalive_sent(k(3));
    d.answered(k(3) + ms(50));
    assert_eq!(drain(&mut d, k(3) + ms(50)), [Action::Probe]);
    d.answered(k(3) + ms(100));
    assert_eq!(drain(&mut d, k(3) + ms(100)), [Action::Ask { udp: true }]);
    assert!(!d.said_down());
    assert_eq!(drain(&mut d, k(3) + KEEPALIVE), [], "asked once");
    // loa moves it back: a keepalive unanswered by unicast asks for TLS again.
    d.transport(false, k(4));
    d.keepalive_sent(k(4));
    assert_eq!(drain(&mut d, k(4) + PROBE_EVERY), [Action::Probe]);
    assert_eq!(drain(&mut d, k(4) + ANSWER_WITHIN), [Action::Ask { udp: false }]);
}

#[test]
fn inside_tls_by_loas_own_fallback_the_speaker_asks_nothing() {
    let t0 = Instant::now();
    let mut d = Downstream::new(true);
    for n in 0..5 {
        let at = t0 + KEEPALIVE * n;
        d.keepalive_sent(at);
        if n % 2 == 0 {
            d.answered(at + ms(40));
        }
        assert_eq!(drain(&mut d, at + ANSWER_WITHIN), [], "loa wins unicast back itself when UDP reaches it");
    }
}

#[test]
fn moved_to_unicast_with_no_audio_following_it_probes_at_once() {
    let t0 = Instant::now();
    let mut d = Downstream::new(true);
    // loa moved it on its own (its keepalives got through by UDP), but
    // nothing of loa's comes in by UDP.
    d.transport(false, t0);
    assert_eq!(d.poll_timeout(), Some(t0 + GAP));
    assert_eq!(drain(&mut d, t0 + GAP), [Action::Probe]);
    assert_eq!(drain(&mut d, t0 + GAP + ANSWER_WITHIN), [Action::Ask { udp: false }]);
}
