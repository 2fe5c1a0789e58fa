use std::time::Duration;

use crate::config::{Config, SrtpSuite, ZoneSecurity};

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

#[test]
fn zones_are_srtp_with_a_daily_key_unless_told_otherwise() {
    let c = Config::parse(MINIMAL, "loa.toml").unwrap();
    assert_eq!(c.zones[0].security, ZoneSecurity::Srtp);
    assert_eq!(c.security.suite, SrtpSuite::AesCm128HmacSha1_80);
    assert_eq!(c.security.rotate, Duration::from_secs(86_400));
    assert!(c.insecure_zone_warnings().is_empty());
}

#[test]
fn security_table_and_a_plain_zone_are_read() {
    let text = format!(
        "{MINIMAL}security = \"none\"\n[[zone]]\nname = \"thon-2\"\ngroup = \"239.255.77.2:5004\"\nsecurity = \"srtp\"\n\
         [security]\nsuite = \"AEAD_AES_128_GCM\"\nrotate = \"12h\"\n"
    );
    let c = Config::parse(&text, "loa.toml").unwrap();
    assert_eq!(c.zones[0].security, ZoneSecurity::None);
    assert_eq!(c.zones[1].security, ZoneSecurity::Srtp);
    assert_eq!(c.security.suite, SrtpSuite::AeadAes128Gcm);
    assert_eq!(c.security.rotate, Duration::from_secs(12 * 3600));
    assert_eq!(
        c.insecure_zone_warnings(),
        ["zone thon-1 has security = \"none\": its audio is plain RTP, so anyone on the network can play audio on its speakers"]
    );
}

#[test]
fn bad_security_values_say_what_would_be_valid() {
    let text = format!(
        "{MINIMAL}security = \"tls\"\n[security]\nsuite = \"AES_CM_128_HMAC_SHA1_32\"\nrotate = \"1s\"\n"
    );
    assert_eq!(
        errors(&text),
        [
            "loa.toml:6:12: security \"tls\" is not valid; use \"srtp\" (default) or \"none\" (plain RTP, for speakers that cannot do SRTP)",
            "loa.toml:8:9: suite \"AES_CM_128_HMAC_SHA1_32\" is not one loa offers; use \"AES_CM_128_HMAC_SHA1_80\" (default) or \"AEAD_AES_128_GCM\"",
            "loa.toml:9:10: rotate \"1s\" is too short; a zone key must live at least \"5s\" (default \"24h\")",
        ]
    );
    assert_eq!(
        errors(&format!("{MINIMAL}[security]\nrotate = \"daily\"\n")),
        ["loa.toml:7:10: rotate \"daily\" is not a duration; write e.g. \"500ms\", \"5s\" or \"1m\""]
    );
}
