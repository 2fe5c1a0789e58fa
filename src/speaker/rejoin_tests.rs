use super::*;
use crate::speakers::join::{admit, Enrolment};

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

fn within_jitter(delay: Duration, nominal: Duration) -> bool {
    delay >= nominal.mul_f64(1.0 - JITTER) && delay <= nominal.mul_f64(1.0 + JITTER)
}

/// Fails `n` times in a row, each attempt made when due; the delays.
fn fail(rejoin: &mut Rejoin, now: &mut Instant, n: usize, cause: Cause) -> Vec<Duration> {
    (0..n)
        .map(|_| match rejoin.ended(*now, cause) {
            Next::RetryIn(d) => {
                *now += d;
                assert!(rejoin.poll(*now), "the attempt is due after the delay");
                d
            }
            Next::Stop(s) => panic!("stopped: {s:?}"),
        })
        .collect()
}

#[test]
fn the_first_attempt_is_due_at_once_and_only_once() {
    let t0 = Instant::now();
    let mut r = Rejoin::new(t0, 1);
    assert_eq!(r.poll_timeout(), Some(t0));
    assert!(r.poll(t0));
    assert!(!r.poll(t0 + secs(100.0)), "under way: not due again until it ends");
}

#[test]
fn lost_sessions_back_off_from_one_second_doubling_to_the_cap_with_jitter() {
    let mut now = Instant::now();
    let mut r = Rejoin::new(now, 7);
    r.poll(now);
    let delays = fail(&mut r, &mut now, 10, Cause::Lost);
    let nominal = [1, 2, 4, 8, 16, 32, 60, 60, 60, 60];
    for (d, n) in delays.iter().zip(nominal) {
        assert!(within_jitter(*d, Duration::from_secs(n)), "{d:?} is not {n} s ±20 %");
    }
}

#[test]
fn an_attempt_is_not_due_before_its_delay() {
    let now = Instant::now();
    let mut r = Rejoin::new(now, 3);
    r.poll(now);
    let Next::RetryIn(d) = r.ended(now, Cause::Lost) else { panic!() };
    assert_eq!(r.poll_timeout(), Some(now + d));
    assert!(!r.poll(now + d - secs(0.001)));
    assert!(r.poll(now + d));
}

#[test]
fn speakers_cut_off_together_come_back_spread_out() {
    // 1000 speakers behind one NAT lose loa at the same instant.
    let now = Instant::now();
    let firsts: Vec<Duration> = (0..1000u64)
        .map(|seed| {
            let mut r = Rejoin::new(now, seed);
            r.poll(now);
            match r.ended(now, Cause::Lost) {
                Next::RetryIn(d) => d,
                Next::Stop(_) => unreachable!(),
            }
        })
        .collect();
    // Counted in 100 ms bins over 0.8–1.2 s: none holds more than a
    // fifth of them (an even spread puts a quarter in each).
    let mut bins = [0usize; 4];
    for d in &firsts {
        assert!(within_jitter(*d, FIRST_DELAY));
        bins[(((d.as_secs_f64() - 0.8) / 0.1) as usize).min(3)] += 1;
    }
    assert!(bins.iter().all(|&n| (150..=350).contains(&n)), "{bins:?}");
}

#[test]
fn the_same_seed_draws_the_same_delays() {
    let now = Instant::now();
    let run = |seed| {
        let (mut t, mut r) = (now, Rejoin::new(now, seed));
        r.poll(t);
        fail(&mut r, &mut t, 5, Cause::Lost)
    };
    assert_eq!(run(42), run(42));
    assert_ne!(run(42), run(43));
}

#[test]
fn a_session_that_lasted_starts_the_backoff_over() {
    let mut now = Instant::now();
    let mut r = Rejoin::new(now, 5);
    r.poll(now);
    fail(&mut r, &mut now, 6, Cause::Lost);
    r.joined(now);
    now += STABLE;
    let Next::RetryIn(d) = r.ended(now, Cause::Lost) else { panic!() };
    assert!(within_jitter(d, FIRST_DELAY), "{d:?}");
}

#[test]
fn a_short_session_keeps_the_backoff_growing() {
    let mut now = Instant::now();
    let mut r = Rejoin::new(now, 5);
    r.poll(now);
    fail(&mut r, &mut now, 3, Cause::Lost);
    r.joined(now);
    assert_eq!(r.poll_timeout(), None, "joined: nothing due");
    now += secs(2.0);
    let Next::RetryIn(d) = r.ended(now, Cause::Lost) else { panic!() };
    assert!(within_jitter(d, Duration::from_secs(8)), "{d:?}");
}

#[test]
fn a_refusal_that_may_pass_is_retried_at_the_cap_only() {
    let mut now = Instant::now();
    let mut r = Rejoin::new(now, 9);
    r.poll(now);
    for d in fail(&mut r, &mut now, 3, Cause::Held) {
        assert!(within_jitter(d, MAX_DELAY), "{d:?}");
    }
}

#[test]
fn what_rejoining_cannot_fix_stops_with_nothing_due() {
    for stop in [Stop::Refused, Stop::WrongDaemon, Stop::Credential] {
        let now = Instant::now();
        let mut r = Rejoin::new(now, 1);
        r.poll(now);
        assert_eq!(r.ended(now, Cause::Final(stop)), Next::Stop(stop));
        assert_eq!(r.poll_timeout(), None);
    }
}

#[test]
fn each_stop_has_its_own_exit_status_and_none_is_0_or_1() {
    let codes = [Stop::Refused, Stop::WrongDaemon, Stop::Credential].map(Stop::exit_status);
    assert_eq!(codes, [3, 4, 5]);
}

#[test]
fn loa_refusing_an_unknown_or_revoked_credential_stops_the_speaker() {
    let unknown = admit(&Enrolment::Unknown).unwrap_err();
    let revoked = admit(&Enrolment::Revoked { name: "cho".into(), at: jiff::Timestamp::UNIX_EPOCH }).unwrap_err();
    for reason in [unknown, revoked] {
        assert_eq!(cause(&SpeakerError::Refused(reason.clone())), Cause::Final(Stop::Refused), "{reason}");
    }
    // The revocation of a joined speaker comes as loa's bye.
    let bye = SpeakerError::Refused("this speaker was revoked by the operator".into());
    assert_eq!(cause(&bye), Cause::Final(Stop::Refused));
    let version = SpeakerError::Refused("this loa speaks join protocol version 2, the speaker 1".into());
    assert_eq!(cause(&version), Cause::Final(Stop::Refused));
}

#[test]
fn a_bad_credential_or_another_daemon_stops_the_speaker() {
    assert_eq!(cause(&SpeakerError::Credential("c.toml: no private key".into())), Cause::Final(Stop::Credential));
    assert_eq!(cause(&SpeakerError::WrongDaemon("pin".into())), Cause::Final(Stop::WrongDaemon));
}

#[test]
fn a_broken_connection_or_loa_going_away_is_rejoined_soon() {
    for reason in [
        "cannot join loa at 192.0.2.1:5300: Connection refused (os error 111)",
        "loa closed the connection",
        "loa ended the session: the daemon is stopping",
        "the connection to loa failed: Connection reset by peer (os error 104)",
    ] {
        assert_eq!(cause(&SpeakerError::JoinFailed(reason.into())), Cause::Lost, "{reason}");
    }
}

#[test]
fn loa_unable_to_look_enrolments_up_is_a_loa_away() {
    for reason in ["loa cannot check enrolments now: database is locked", "loa cannot check enrolments now: the daemon is shutting down"] {
        assert_eq!(cause(&SpeakerError::Refused(reason.into())), Cause::Lost, "{reason}");
    }
}

#[test]
fn a_refusal_in_unknown_words_or_a_twin_is_retried_at_the_cap() {
    assert_eq!(cause(&SpeakerError::Refused("the moon is full".into())), Cause::Held);
    let twin = SpeakerError::JoinFailed("loa ended the session: the speaker joined again from another connection".into());
    assert_eq!(cause(&twin), Cause::Held);
}

#[test]
fn loa_revoking_a_joined_speaker_ends_it_as_a_refusal_with_loas_words() {
    let e = session_end("loa ended the session: this speaker was revoked by the operator".into());
    assert!(matches!(&e, SpeakerError::Refused(r) if r == "this speaker was revoked by the operator"), "{e:?}");
    assert_eq!(e.exit_status(), 3);
    let stopping = session_end("loa ended the session: the daemon is stopping".into());
    assert!(matches!(&stopping, SpeakerError::JoinFailed(_)), "{stopping:?}");
    assert_eq!(cause(&stopping), Cause::Lost);
}
