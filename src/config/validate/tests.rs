use crate::config::{Channels, Config, FrameDuration};

/// Lines 1–5; tests append from line 6 on.
const MINIMAL: &str =
    "[network]\ninterface = \"127.0.0.1\"\n[[zone]]\nname = \"thon-1\"\ngroup = \"239.255.77.1:5004\"\n";

fn errors(text: &str) -> Vec<String> {
    Config::parse(text, "loa.toml")
        .unwrap_err()
        .0
        .iter()
        .map(|e| e.to_string())
        .collect()
}

/// Errors for MINIMAL followed by `more`.
fn errors_after_minimal(more: &str) -> Vec<String> {
    errors(&format!("{MINIMAL}{more}"))
}

#[test]
fn minimal_file_gets_the_documented_defaults() {
    let c = Config::parse(MINIMAL, "loa.toml").unwrap();
    assert_eq!(c.source, None);
    assert_eq!(c.network.interface.to_string(), "127.0.0.1");
    assert_eq!((c.network.ttl, c.network.dscp), (1, 46));
    assert_eq!(c.audio.channels, Channels::Mono);
    assert_eq!(c.audio.frame, FrameDuration::Ms20);
    assert_eq!((c.audio.bitrate_bps, c.audio.complexity), (32_000, 10));
    assert_eq!(
        (c.audio.fec, c.audio.expected_loss_pct, c.audio.payload_type),
        (false, 0, 96)
    );
    assert_eq!(c.daemon.socket.to_str(), Some("/run/loa/loa.sock"));
    assert_eq!(c.daemon.state_dir.to_str(), Some("/var/lib/loa"));
    assert_eq!(c.daemon.timezone, "Asia/Ho_Chi_Minh");
    assert!(c.daemon.media_roots.is_empty());
    assert_eq!(c.zones.len(), 1);
    assert_eq!(c.zones[0].name, "thon-1");
    assert_eq!(c.zones[0].group.to_string(), "239.255.77.1:5004");
    assert!(c.zones[0].endpoints.is_empty() && c.zones[0].unicast.is_empty());
}

#[test]
fn full_file_is_read_into_typed_values() {
    let text = "\
[network]
interface = \"192.168.1.10\"
ttl = 4
dscp = 34

[audio]
channels = 2
frame_ms = 60
bitrate = 96000
complexity = 5
fec = true
expected_loss_pct = 10
payload_type = 111

[daemon]
socket = \"/tmp/x.sock\"
state_dir = \"/tmp/s\"
timezone = \"Europe/Berlin\"
media_roots = [\"/srv/a\", \"/srv/b\"]

[[zone]]
name = \"thon-1\"
group = \"239.255.77.1:5004\"
endpoints = [{ name = \"cho\", address = \"10.8.0.2\" }]
unicast = [\"10.8.0.3:5004\"]

[[zone]]
name = \"thon_2\"
group = \"239.255.77.1:5006\"
";
    let c = Config::parse(text, "loa.toml").unwrap();
    assert_eq!(c.network.interface.to_string(), "192.168.1.10");
    assert_eq!((c.network.ttl, c.network.dscp), (4, 34));
    assert_eq!(c.audio.channels, Channels::Stereo);
    assert_eq!(c.audio.frame, FrameDuration::Ms60);
    assert_eq!((c.audio.bitrate_bps, c.audio.complexity), (96_000, 5));
    assert_eq!(
        (c.audio.fec, c.audio.expected_loss_pct, c.audio.payload_type),
        (true, 10, 111)
    );
    assert_eq!(c.daemon.socket.to_str(), Some("/tmp/x.sock"));
    assert_eq!(c.daemon.state_dir.to_str(), Some("/tmp/s"));
    assert_eq!(c.daemon.timezone, "Europe/Berlin");
    assert_eq!(
        c.daemon.media_roots,
        ["/srv/a", "/srv/b"].map(std::path::PathBuf::from)
    );
    assert_eq!(c.zones[0].endpoints[0].name, "cho");
    assert_eq!(c.zones[0].endpoints[0].address.to_string(), "10.8.0.2");
    assert_eq!(c.zones[0].unicast[0].to_string(), "10.8.0.3:5004");
    assert_eq!(
        c.zone("thon_2").unwrap().group.to_string(),
        "239.255.77.1:5006"
    );
}

#[test]
fn shipped_demo_config_is_valid() {
    let text = include_str!("../../../config/demo.toml");
    let c = Config::parse(text, "config/demo.toml").unwrap_or_else(|e| panic!("{e}"));
    assert!(!c.zones.is_empty());
}

#[test]
fn group_port_65534_is_accepted_because_rtcp_still_fits() {
    let c = Config::parse(&MINIMAL.replace(":5004", ":65534"), "loa.toml").unwrap();
    assert_eq!(c.zones[0].group.port(), 65534);
}

#[test]
fn same_endpoint_name_in_two_zones_is_allowed() {
    let ep = "endpoints = [{ name = \"cho\", address = \"10.8.0.2\" }]\n";
    let text =
        format!("{MINIMAL}{ep}[[zone]]\nname = \"b\"\ngroup = \"239.255.77.2:5004\"\n{ep}");
    assert!(Config::parse(&text, "loa.toml").is_ok());
}

#[test]
fn out_of_range_bitrate_points_at_the_value() {
    let e = errors_after_minimal("[audio]\nbitrate = 900000\n");
    assert_eq!(
        e,
        ["loa.toml:7:11: bitrate 900000 is out of range 6000–510000"]
    );
}

#[test]
fn every_ranged_setting_names_its_valid_range() {
    let e = errors(
        "[network]\ninterface = \"127.0.0.1\"\nttl = 0\ndscp = 64\n\
         [audio]\ncomplexity = 11\nexpected_loss_pct = 101\npayload_type = 95\n\
         [[zone]]\nname = \"a\"\ngroup = \"239.1.1.1:5004\"\n",
    );
    assert_eq!(
        e,
        [
            "loa.toml:3:7: ttl 0 is out of range 1–255",
            "loa.toml:4:8: dscp 64 is out of range 0–63",
            "loa.toml:6:14: complexity 11 is out of range 0–10",
            "loa.toml:7:21: expected_loss_pct 101 is out of range 0–100",
            "loa.toml:8:16: payload_type 95 is out of range 96–127",
        ]
    );
}

#[test]
fn chimes_are_off_by_default_and_read_per_priority() {
    let c = Config::parse(MINIMAL, "loa.toml").unwrap();
    assert!(!c.chime.any());
    let c = Config::parse(
        &format!("{MINIMAL}[chime]\nannouncement = true\nemergency = \"gong.flac\"\nlive = false\n"),
        "loa.toml",
    )
    .unwrap();
    assert_eq!(c.chime.announcement, super::super::Chime::BuiltIn);
    assert_eq!(c.chime.emergency, super::super::Chime::File("gong.flac".into()));
    assert_eq!(c.chime.for_priority(crate::proto::Priority::Live), &super::super::Chime::Off);
    let e = Config::parse(&format!("{MINIMAL}[chime]\nemergency = 3\n"), "loa.toml").unwrap_err().to_string();
    assert!(e.contains("a chime is true (loa's own chime), false, or a file"), "{e}");
    let e = Config::parse(&format!("{MINIMAL}[chime]\nemergency = \" \"\n"), "loa.toml").unwrap_err().to_string();
    assert!(e.contains("chime file is empty"), "{e}");
}

#[test]
fn sap_is_off_by_default_and_reads_its_settings() {
    let c = Config::parse(MINIMAL, "loa.toml").unwrap();
    assert!(!c.sap.enabled);
    assert_eq!(c.sap.interval, std::time::Duration::from_secs(30));
    assert_eq!(c.sap.address.to_string(), "224.2.127.254:9875");
    let text = format!("{MINIMAL}[sap]\nenabled = true\ninterval = \"2s\"\naddress = \"239.195.255.255:9875\"\n");
    let c = Config::parse(&text, "loa.toml").unwrap();
    assert!(c.sap.enabled);
    assert_eq!(c.sap.interval, std::time::Duration::from_secs(2));
    assert_eq!(c.sap.address.to_string(), "239.195.255.255:9875");
    // PipeWire's and PulseAudio's default SAP address is link-local; fine here.
    let text = format!("{MINIMAL}[sap]\naddress = \"224.0.0.56:9875\"\n");
    assert_eq!(Config::parse(&text, "loa.toml").unwrap().sap.address.to_string(), "224.0.0.56:9875");
}

#[test]
fn sap_address_must_be_multicast_and_interval_at_least_a_second() {
    let e = errors_after_minimal("[sap]\ninterval = \"500ms\"\naddress = \"10.0.0.1:9875\"\n");
    assert_eq!(
        e,
        [
            "loa.toml:7:12: interval \"500ms\" is too short; SAP announcements need at least \"1s\" (default \"30s\")",
            "loa.toml:8:11: sap address \"10.0.0.1:9875\" is not a multicast IPv4 ip:port; the standard one is \"224.2.127.254:9875\"",
        ]
    );
    let e = errors_after_minimal("[sap]\naddress = \"224.2.127.254\"\ninterval = \"soon\"\n");
    assert_eq!(e.len(), 2, "{e:?}");
    assert!(e[1].contains("not a duration"), "{e:?}");
}

#[test]
fn unsupported_channel_count_lists_the_choices() {
    let e = errors_after_minimal("[audio]\nchannels = 6\n");
    assert_eq!(
        e,
        ["loa.toml:7:12: channels 6 is not supported; expected 1 (mono) or 2 (stereo)"]
    );
}

#[test]
fn loudness_settings_default_and_parse() {
    let text = format!(
        "{MINIMAL}[audio]\nnormalize = false\nloudness_target = -23\ntrue_peak_max = -2.5\n"
    );
    let c = Config::parse(&text, "loa.toml").unwrap();
    assert_eq!(
        c.audio.loudness,
        crate::config::LoudnessSettings {
            normalize: false,
            target_lufs: -23.0,
            true_peak_max_dbtp: -2.5
        }
    );
    assert_eq!(
        Config::parse(MINIMAL, "loa.toml").unwrap().audio.loudness,
        crate::config::LoudnessSettings::default()
    );
}

#[test]
fn out_of_range_loudness_points_at_the_value() {
    let e = errors_after_minimal("[audio]\nloudness_target = 3.0\ntrue_peak_max = -20.0\n");
    assert_eq!(
        e,
        [
            "loa.toml:7:19: loudness_target 3 is out of range -40 to -5",
            "loa.toml:8:17: true_peak_max -20 is out of range -9 to 0"
        ]
    );
}

#[test]
fn unsupported_frame_duration_lists_the_choices() {
    let e = errors_after_minimal("[audio]\nframe_ms = 25\n");
    assert_eq!(
        e,
        ["loa.toml:7:12: frame_ms 25 is not supported; expected 10, 20, 40 or 60"]
    );
}

#[test]
fn unknown_key_names_its_table_and_the_valid_keys() {
    let e = errors_after_minimal("[audio]\nbitrat = 32000\n");
    assert_eq!(
        e,
        ["loa.toml:7:1: unknown key \"bitrat\" in [audio]; expected one of channels, frame_ms, \
          bitrate, complexity, fec, expected_loss_pct, payload_type, normalize, loudness_target, \
          true_peak_max"]
    );
}

#[test]
fn speakers_listen_is_off_by_default_and_reads_its_settings() {
    let c = Config::parse(MINIMAL, "loa.toml").unwrap();
    assert_eq!(c.speakers, crate::config::Speakers::default());
    assert_eq!(c.speakers.keepalive, std::time::Duration::from_secs(15));
    let text = format!("{MINIMAL}[speakers]\nlisten = \"192.0.2.1:5300\"\nkeepalive = \"500ms\"\nmissed_keepalives = 2\n");
    let c = Config::parse(&text, "loa.toml").unwrap();
    assert_eq!(c.speakers.listen, Some("192.0.2.1:5300".parse().unwrap()));
    assert_eq!((c.speakers.keepalive, c.speakers.missed_keepalives), (std::time::Duration::from_millis(500), 2));
}

#[test]
fn speakers_settings_out_of_range_are_refused_in_words() {
    let e = errors_after_minimal("[speakers]\nlisten = \"5300\"\nkeepalive = \"2m\"\nmissed_keepalives = 0\n");
    assert_eq!(e.len(), 3, "{e:?}");
    assert!(e[0].contains("speakers listen \"5300\" is not ADDR:PORT"), "{}", e[0]);
    assert!(e[1].contains("keepalive \"2m\" is out of range 100ms–60s"), "{}", e[1]);
    assert!(e[2].contains("missed_keepalives 0 is out of range 1–20"), "{}", e[2]);
}

#[test]
fn unknown_table_is_refused_at_the_top_level() {
    let e = errors_after_minimal("[[schedules]]\ncron = \"0 6 * * *\"\n");
    assert_eq!(
        e,
        ["loa.toml:6:3: unknown key \"schedules\" at the top level; expected one of network, audio, \
          daemon, health, sap, chime, tts, speakers, security, zone, playlist, schedule"]
    );
}

#[test]
fn unknown_key_in_an_inline_endpoint_points_inside_it() {
    let e = errors_after_minimal("endpoints = [{ name = \"x\", adress = \"10.0.0.1\" }]\n");
    assert_eq!(
        e,
        ["loa.toml:6:28: unknown key \"adress\" in a zone endpoint; expected one of name, address, probe, \
         probe_interval, probe_timeout"]
    );
}

#[test]
fn zone_without_group_points_at_its_header() {
    let e = errors("[network]\ninterface = \"127.0.0.1\"\n[[zone]]\nname = \"a\"\n");
    assert_eq!(e, ["loa.toml:3:1: missing key \"group\" in [[zone]]"]);
}

#[test]
fn wrong_value_type_is_named_in_toml_terms() {
    let e = errors_after_minimal("[audio]\nbitrate = \"32k\"\n");
    assert_eq!(
        e,
        ["loa.toml:7:11: invalid type: string \"32k\", expected an integer"]
    );
}

#[test]
fn table_defined_twice_is_a_duplicate_key() {
    let e = errors_after_minimal("[network]\nttl = 2\n");
    assert_eq!(e, ["loa.toml:6:2: duplicate key \"network\""]);
}

#[test]
fn toml_syntax_error_keeps_its_position() {
    let e = errors("[network]\ninterface 127.0.0.1\n");
    assert_eq!(e, ["loa.toml:2:11: key with no value, expected \"=\""]);
}

#[test]
fn duplicate_zone_name_says_where_the_first_is() {
    let e =
        errors_after_minimal("[[zone]]\nname = \"thon-1\"\ngroup = \"239.255.77.2:5004\"\n");
    assert_eq!(
        e,
        ["loa.toml:7:8: duplicate zone name \"thon-1\" (first defined at line 4)"]
    );
}

#[test]
fn duplicate_group_names_the_zone_already_using_it() {
    let e = errors_after_minimal("[[zone]]\nname = \"b\"\ngroup = \"239.255.77.1:5004\"\n");
    assert_eq!(
        e,
        ["loa.toml:8:9: duplicate group 239.255.77.1:5004 (already used by zone \"thon-1\")"]
    );
}

#[test]
fn rtp_port_on_another_zones_rtcp_port_overlaps() {
    let e = errors(
        "[network]\ninterface = \"127.0.0.1\"\n\
         [[zone]]\nname = \"a\"\ngroup = \"239.1.1.1:5005\"\n\
         [[zone]]\nname = \"b\"\ngroup = \"239.1.1.1:5004\"\n",
    );
    assert_eq!(
        e,
        [
            "loa.toml:5:9: group port 5005 must be even, non-zero and below 65535 (RTCP uses port + 1)",
            "loa.toml:8:9: group 239.1.1.1:5004 overlaps zone \"a\" at 239.1.1.1:5005 (RTCP uses port + 1)",
        ]
    );
}

#[test]
fn odd_or_zero_group_port_is_refused() {
    let e = errors(&MINIMAL.replace(":5004", ":65535"));
    assert_eq!(
        e,
        ["loa.toml:5:9: group port 65535 must be even, non-zero and below 65535 (RTCP uses port + 1)"]
    );
    let e = errors(&MINIMAL.replace(":5004", ":0"));
    assert_eq!(e, ["loa.toml:5:9: group port 0 must be even, non-zero and below 65535 (RTCP uses port + 1)"]);
}

#[test]
fn non_multicast_group_is_refused_with_the_valid_range() {
    let e = errors(&MINIMAL.replace("239.255.77.1", "10.0.0.1"));
    assert_eq!(
        e,
        ["loa.toml:5:9: group 10.0.0.1:5004 is not a multicast address (expected 224.0.0.0–239.255.255.255)"]
    );
}

#[test]
fn local_network_control_group_is_refused() {
    let e = errors(&MINIMAL.replace("239.255.77.1", "224.0.0.5"));
    assert_eq!(
        e,
        ["loa.toml:5:9: group 224.0.0.5:5004 is in 224.0.0.0/24, reserved for local network control \
          (RFC 5771); use an administratively scoped group such as 239.255.77.1"]
    );
}

#[test]
fn unparsable_group_shows_an_example() {
    let e = errors(&MINIMAL.replace("239.255.77.1:5004", "239.255.77.1"));
    assert_eq!(
        e,
        ["loa.toml:5:9: group \"239.255.77.1\" is not a multicast address:port, e.g. \"239.255.77.1:5004\""]
    );
}

#[test]
fn missing_interface_points_at_the_network_table() {
    let e = errors(
        "# loa\n\n[network]\nttl = 2\n[[zone]]\nname = \"a\"\ngroup = \"239.1.1.1:5004\"\n",
    );
    assert_eq!(
        e,
        ["loa.toml:3:1: missing [network] interface: multicast needs an explicit sending interface, \
          e.g. interface = \"127.0.0.1\""]
    );
}

#[test]
fn missing_network_table_points_at_the_start_of_the_file() {
    let e = errors("[[zone]]\nname = \"a\"\ngroup = \"239.1.1.1:5004\"\n");
    assert_eq!(
        e,
        ["loa.toml:1:1: missing [network] interface: multicast needs an explicit sending interface, \
          e.g. interface = \"127.0.0.1\""]
    );
}

#[test]
fn unspecified_interface_is_refused() {
    let e = errors(&MINIMAL.replace("127.0.0.1", "0.0.0.0"));
    assert_eq!(
        e,
        ["loa.toml:2:13: interface 0.0.0.0 would let the kernel pick a route; give the address of the \
          sending interface, e.g. \"192.168.1.10\""]
    );
}

#[test]
fn interface_name_instead_of_address_is_refused() {
    let e = errors(&MINIMAL.replace("127.0.0.1", "eth0"));
    assert_eq!(
        e,
        ["loa.toml:2:13: interface \"eth0\" is not an IPv4 address; give the address of the sending \
          interface, e.g. \"192.168.1.10\""]
    );
}

#[test]
fn unknown_timezone_is_refused() {
    let e = errors_after_minimal("[daemon]\ntimezone = \"Asia/Saigon City\"\n");
    assert_eq!(
        e,
        ["loa.toml:7:12: unknown timezone \"Asia/Saigon City\"; use an IANA name such as \"Asia/Ho_Chi_Minh\""]
    );
}

#[test]
fn zone_name_outside_ascii_letters_digits_dash_underscore_is_refused() {
    let e = errors(&MINIMAL.replace("thon-1", "thôn 1"));
    assert_eq!(
        e,
        ["loa.toml:4:8: zone name \"thôn 1\" may only use letters A–Z, a–z, digits 0–9, '-' and '_'"]
    );
}

#[test]
fn empty_zone_name_is_refused() {
    let e = errors(&MINIMAL.replace("thon-1", ""));
    assert_eq!(
        e,
        ["loa.toml:4:8: zone name is empty; use letters A–Z, a–z, digits 0–9, '-' and '_'"]
    );
}

#[test]
fn duplicate_endpoint_name_in_a_zone_is_refused() {
    let e = errors_after_minimal(
        "endpoints = [{ name = \"x\", address = \"10.0.0.1\" }, { name = \"x\", address = \"10.0.0.2\" }]\n",
    );
    assert_eq!(
        e,
        ["loa.toml:6:61: duplicate endpoint name \"x\" in zone \"thon-1\""]
    );
}

#[test]
fn endpoint_address_that_is_not_ipv4_is_refused() {
    let e =
        errors_after_minimal("endpoints = [{ name = \"x\", address = \"loa-cho.local\" }]\n");
    assert_eq!(
        e,
        ["loa.toml:6:38: endpoint address \"loa-cho.local\" is not an IPv4 address, e.g. \"10.8.0.21\""]
    );
}

#[test]
fn unicast_target_without_port_is_refused() {
    let e = errors_after_minimal("unicast = [\"10.8.0.21\"]\n");
    assert_eq!(
        e,
        ["loa.toml:6:12: unicast target \"10.8.0.21\" is not an IPv4 ip:port, e.g. \"10.8.0.21:5004\""]
    );
}

#[test]
fn unicast_target_on_a_multicast_address_is_refused() {
    let e = errors_after_minimal("unicast = [\"239.1.1.1:5004\"]\n");
    assert_eq!(
        e,
        ["loa.toml:6:12: unicast target 239.1.1.1:5004 is not a host address; multicast belongs in group"]
    );
}

#[test]
fn unicast_port_without_room_for_rtcp_is_refused() {
    let e = errors_after_minimal("unicast = [\"10.8.0.21:5004\", \"10.8.0.22:65535\"]\n");
    assert_eq!(
        e,
        ["loa.toml:6:30: unicast port 65535 must be between 1 and 65534 (RTCP uses port + 1)"]
    );
}

#[test]
fn config_without_zones_is_refused() {
    let e = errors("[network]\ninterface = \"127.0.0.1\"\n");
    assert_eq!(e, ["loa.toml:1:1: no zones configured; add at least one [[zone]] with a name and a multicast group"]);
}

#[test]
fn every_error_in_the_file_is_reported_in_file_order() {
    let e = errors(
        "[network]\ninterface = \"eth0\"\nttl = 0\n\
         [audio]\nchannels = 6\nframe_ms = 25\n\
         [daemon]\ntimezone = \"Asia/Hanoi\"\n\
         [[zone]]\nname = \"thôn 1\"\ngroup = \"10.1.1.1:5004\"\n\
         endpoints = [{ name = \"x\", address = \"nowhere\" }]\n",
    );
    let positions: Vec<&str> = e.iter().map(|e| e.split(": ").next().unwrap()).collect();
    assert_eq!(
        positions,
        [
            "loa.toml:2:13",
            "loa.toml:3:7",
            "loa.toml:5:12",
            "loa.toml:6:12",
            "loa.toml:8:12",
            "loa.toml:10:8",
            "loa.toml:11:9",
            "loa.toml:12:38",
        ],
        "{e:#?}"
    );
}

#[test]
fn load_names_the_file_it_cannot_read() {
    let e = Config::load(std::path::Path::new("/nonexistent/loa.toml")).unwrap_err();
    assert_eq!(
        e.to_string(),
        "/nonexistent/loa.toml:1:1: cannot read config file: file not found"
    );
}

#[test]
fn load_records_the_source_path_and_uses_it_in_errors() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("loa.toml");
    std::fs::write(&path, MINIMAL).unwrap();
    assert_eq!(
        Config::load(&path).unwrap().source.as_deref(),
        Some(path.as_path())
    );
    std::fs::write(&path, MINIMAL.replace("239.255.77.1", "10.0.0.1")).unwrap();
    let e = Config::load(&path).unwrap_err();
    assert!(
        e.to_string()
            .starts_with(&format!("{}:5:9: group", path.display())),
        "{e}"
    );
}
