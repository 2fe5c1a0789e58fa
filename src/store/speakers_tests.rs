use super::*;

fn at(s: i64) -> Timestamp {
    Timestamp::from_second(1_800_000_000 + s).unwrap()
}

fn record(name: &str, pin: &str) -> SpeakerRecord {
    SpeakerRecord {
        name: name.into(),
        zones: vec!["thon-1".into(), "thon-2".into()],
        pin: pin.into(),
        enrolled_by: Some(1000),
        enrolled_at: at(0),
        revoked_by: None,
        revoked_at: None,
    }
}

#[test]
fn enrolment_is_kept_with_its_audit_row() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path()).unwrap();
    store.enrol_speaker(&record("xa-dong", "sha256:aa")).unwrap();
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(store.speakers().unwrap(), vec![record("xa-dong", "sha256:aa")]);
    assert_eq!(store.speaker_by_pin("sha256:aa").unwrap(), Some(record("xa-dong", "sha256:aa")));
    let events = store.speaker_events(10).unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!((events[0].kind, events[0].by_uid, events[0].detail.as_str()), (SpeakerEventKind::Enrolled, Some(1000), "zones thon-1,thon-2"));
}

#[test]
fn second_live_enrolment_of_a_name_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path()).unwrap();
    store.enrol_speaker(&record("xa-dong", "sha256:aa")).unwrap();
    assert!(store.enrol_speaker(&record("xa-dong", "sha256:bb")).is_err());
    assert_eq!(store.speakers().unwrap().len(), 1);
    assert_eq!(store.speaker_events(10).unwrap().len(), 1, "no audit row for what did not happen");
}

#[test]
fn revocation_records_who_and_when_and_frees_the_name() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path()).unwrap();
    store.enrol_speaker(&record("xa-dong", "sha256:aa")).unwrap();
    let revoked = store.revoke_speaker("xa-dong", Some(0), at(60)).unwrap().unwrap();
    assert_eq!((revoked.revoked_by, revoked.revoked_at), (Some(0), Some(at(60))));
    assert_eq!(store.live_speaker("xa-dong").unwrap(), None);
    assert_eq!(store.revoke_speaker("xa-dong", Some(0), at(61)).unwrap(), None, "nothing left to revoke");
    // The old pin stays known, as revoked, so a join with it gets a reason.
    assert_eq!(store.speaker_by_pin("sha256:aa").unwrap().unwrap().revoked_at, Some(at(60)));
    store.enrol_speaker(&record("xa-dong", "sha256:bb")).unwrap();
    let names: Vec<_> = store.speakers().unwrap().into_iter().map(|s| (s.pin, s.revoked_at.is_some())).collect();
    assert_eq!(names, vec![("sha256:bb".to_string(), false), ("sha256:aa".to_string(), true)]);
    let kinds: Vec<_> = store.speaker_events(10).unwrap().into_iter().map(|e| (e.kind, e.by_uid)).collect();
    assert_eq!(kinds, vec![(SpeakerEventKind::Enrolled, Some(1000)), (SpeakerEventKind::Revoked, Some(0)), (SpeakerEventKind::Enrolled, Some(1000))]);
}

#[test]
fn refusal_of_an_unknown_certificate_is_audited_with_its_address() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path()).unwrap();
    let event = SpeakerEvent {
        at: at(5),
        speaker: None,
        kind: SpeakerEventKind::Refused,
        by_uid: None,
        address: Some("198.51.100.7:40000".into()),
        detail: "this certificate is not enrolled".into(),
    };
    store.speaker_event(&event).unwrap();
    assert_eq!(store.speaker_events(10).unwrap(), vec![event]);
}
