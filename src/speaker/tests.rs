use super::*;

fn options() -> SpeakerOptions {
    SpeakerOptions::default()
}

#[test]
fn a_group_alone_is_enough_and_rtcp_goes_to_the_next_port() {
    let p = plan(&SpeakerOptions {
        group: Some("239.255.9.9:5004".parse().unwrap()),
        ..options()
    })
    .unwrap();
    assert_eq!(
        (p.rtcp_port, p.channels, p.payload_type),
        (Some(5005), 1, None)
    );
    assert_eq!(p.interface, Ipv4Addr::UNSPECIFIED);
}

#[test]
fn nothing_to_play_is_refused() {
    let err = plan(&options()).unwrap_err();
    assert!(matches!(err, SpeakerError::NoStream), "{err}");
}

#[test]
fn the_sdp_sets_stereo_payload_type_and_rtcp_port() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("z.sdp");
    std::fs::write(
        &path,
        "v=0\r\nc=IN IP4 239.1.2.3/1\r\nm=audio 6000 RTP/AVP 101\r\na=rtpmap:101 opus/48000/2\r\n\
         a=fmtp:101 sprop-stereo=1\r\na=rtcp:6001\r\n",
    )
    .unwrap();
    let p = plan(&SpeakerOptions {
        sdp: Some(path.clone()),
        ..options()
    })
    .unwrap();
    assert_eq!(p.group, Some("239.1.2.3:6000".parse().unwrap()));
    assert_eq!(
        (p.payload_type, p.channels, p.rtcp_port),
        (Some(101), 2, Some(6001))
    );
    let p = plan(&SpeakerOptions {
        sdp: Some(path),
        channels: Some(1),
        ..options()
    })
    .unwrap();
    assert_eq!(p.channels, 1, "--channels wins over the SDP");
}

#[test]
fn sdp_errors_name_the_file() {
    let err = plan(&SpeakerOptions {
        sdp: Some("/nonexistent/zone.sdp".into()),
        ..options()
    })
    .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("cannot read SDP file /nonexistent/zone.sdp: "),
        "{err}"
    );
}

#[test]
fn the_stats_line_names_each_counter() {
    let stats = SpeakerStats {
        received: 10,
        lost: 1,
        recovered: 2,
        concealed: 3,
        late: 4,
        jitter: Duration::from_micros(1500),
        ..SpeakerStats::default()
    };
    assert!(stats.to_string().starts_with(
        "received 10, lost 1, recovered by FEC 2, concealed 3, late 4, jitter 1.50 ms"
    ));
}
