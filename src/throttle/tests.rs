use super::*;

const MINUTE: Duration = Duration::from_secs(60);

#[test]
fn the_first_is_said_at_once_then_one_an_interval_speaking_for_those_between() {
    let t0 = Instant::now();
    let mut throttle = Throttle::new(MINUTE, 8, Full::Quiet);
    assert_eq!(throttle.hit(t0, "a"), Some(1));
    for i in 1..=399 {
        assert_eq!(throttle.hit(t0 + Duration::from_millis(i), "a"), None);
    }
    assert_eq!(throttle.hit(t0 + MINUTE, "a"), Some(400), "399 unsaid and this one");
    assert_eq!(throttle.hit(t0 + MINUTE + Duration::from_secs(1), "a"), None);
    // Another key has its own interval.
    assert_eq!(throttle.hit(t0 + MINUTE, "b"), Some(1));
}

#[test]
fn a_full_table_forgets_the_quiet_keys_first() {
    let t0 = Instant::now();
    let mut throttle = Throttle::new(MINUTE, 2, Full::Quiet);
    assert_eq!(throttle.hit(t0, 1), Some(1));
    assert_eq!(throttle.hit(t0, 2), Some(1));
    assert_eq!(throttle.hit(t0 + Duration::from_secs(1), 3), None, "full of keys said within the minute");
    assert_eq!(throttle.len(), 2);
    assert_eq!(throttle.hit(t0 + MINUTE, 3), Some(1), "a minute on, room was made");
    assert!(throttle.len() <= 2);
}

#[test]
fn when_full_say_is_heard_once_each_and_never_remembered() {
    let t0 = Instant::now();
    let mut throttle = Throttle::new(MINUTE, 100, Full::Say);
    for key in 0..600u32 {
        assert_eq!(throttle.hit(t0, key), Some(1), "each new source is said once");
    }
    assert_eq!(throttle.len(), 100, "the table stays at its bound");
    assert_eq!(throttle.hit(t0, 599), Some(1), "not remembered, so said again");
    assert_eq!(throttle.hit(t0, 5), None, "a remembered one keeps its interval");
}
