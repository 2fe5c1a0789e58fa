//! Validation of `[[playlist]]` and `[[schedule]]` tables: what plays, when
//! and where. Names are checked against the zones and playlists of the same
//! file, so a typo is a FILE:LINE:COL error rather than a silent no-show at
//! 6 a.m.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use toml::Spanned;

use super::raw::{RawPlaylist, RawSchedule, RawZones};
use super::validate::Validator;
use super::{
    Playlist, PlaylistSource, Schedule, ScheduleTarget, Zone, ZoneSelection,
    DEFAULT_MISFIRE_GRACE,
};
use crate::proto::{OnBusy, OnPreempt};
use crate::proto::Priority;
use crate::schedule::CronExpr;

/// Names of playlists and schedules are typed on the command line.
pub(crate) fn name_ok(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// Parses "90s", "30m", "1h30m", "1h 30m" (jiff's friendly format).
pub(crate) use crate::proto::text::parse_duration;

impl Validator<'_> {
    fn check_name(&mut self, at: &Spanned<String>, what: &str, seen: &mut HashMap<String, usize>) {
        let name = at.get_ref();
        if !name_ok(name) {
            self.error(
                at,
                format!(
                    "{what} name \"{name}\" may only use letters A–Z, a–z, digits 0–9, '-' and '_'"
                ),
            );
            return;
        }
        let line = self.loc.at(Some(at.span()), "").line;
        if let Some(first) = seen.get(name) {
            self.error(
                at,
                format!("duplicate {what} name \"{name}\" (first defined at line {first})"),
            );
        } else {
            seen.insert(name.clone(), line);
        }
    }

    fn duration(&mut self, at: &Spanned<String>, key: &str) -> Option<Duration> {
        match parse_duration(at.get_ref()) {
            Some(d) if !d.is_zero() => Some(d),
            _ => {
                self.error(
                    at,
                    format!(
                        "{key} \"{}\" is not a duration; write e.g. \"90s\", \"30m\" or \"1h30m\"",
                        at.get_ref()
                    ),
                );
                None
            }
        }
    }

    pub(super) fn playlists(&mut self, raw: &[Spanned<RawPlaylist>]) -> Vec<Playlist> {
        let mut seen = HashMap::new();
        let mut playlists = Vec::new();
        for table in raw {
            let p = table.get_ref();
            self.check_name(&p.name, "playlist", &mut seen);
            let given = [p.items.is_some(), p.m3u.is_some(), p.dir.is_some()];
            let source = match (&p.items, &p.m3u, &p.dir) {
                _ if given.iter().filter(|g| **g).count() != 1 => {
                    self.error(
                        &p.name,
                        format!(
                            "playlist \"{}\" needs exactly one of items = [files], m3u = \"file.m3u\" \
                             or dir = \"folder\"",
                            p.name.get_ref()
                        ),
                    );
                    continue;
                }
                (Some(items), _, _) => {
                    if items.get_ref().is_empty() {
                        self.error(
                            items,
                            format!("playlist \"{}\" has no items", p.name.get_ref()),
                        );
                        continue;
                    }
                    PlaylistSource::Items(items.get_ref().iter().map(PathBuf::from).collect())
                }
                (_, Some(m3u), _) => PlaylistSource::File(m3u.get_ref().into()),
                (_, _, Some(dir)) => PlaylistSource::Dir(dir.get_ref().into()),
                _ => unreachable!("exactly one source is given"),
            };
            playlists.push(Playlist {
                name: p.name.get_ref().clone(),
                source,
                shuffle: p.shuffle,
                looped: p.looped,
            });
        }
        playlists
    }

    pub(super) fn schedules(
        &mut self,
        raw: &[Spanned<RawSchedule>],
        zones: &[Zone],
        playlists: &[Playlist],
    ) -> Vec<Schedule> {
        let mut seen = HashMap::new();
        let mut schedules = Vec::new();
        for table in raw {
            let s = table.get_ref();
            let name = s.name.get_ref();
            self.check_name(&s.name, "schedule", &mut seen);
            let errors_before = self.errors.len();

            let cron = match CronExpr::parse(s.cron.get_ref()) {
                Ok(cron) => Some(cron),
                Err(e) => {
                    self.error(&s.cron, e.to_string());
                    None
                }
            };
            if let (Some(voice), None) = (&s.voice, &s.say) {
                self.error(voice, format!("voice is for say = \"text\"; schedule \"{name}\" says nothing"));
            }
            if let Some(voice) = s.voice.as_ref().filter(|v| !crate::proto::say::voice_ok(v.get_ref())) {
                self.error(voice, crate::proto::say::SayError::BadVoice(voice.get_ref().clone()).to_string());
            }
            let target = match (&s.playlist, &s.file, &s.say) {
                (None, None, Some(say)) => {
                    if let Err(e) = crate::proto::say::check_text(say.get_ref()) {
                        self.error(say, e.to_string());
                    }
                    Some(ScheduleTarget::Say {
                        text: say.get_ref().trim().to_string(),
                        voice: s.voice.as_ref().map(|v| v.get_ref().clone()),
                    })
                }
                (Some(p), None, None) => {
                    if !playlists.iter().any(|pl| &pl.name == p.get_ref()) {
                        let known: Vec<&str> = playlists.iter().map(|p| p.name.as_str()).collect();
                        self.error(
                            p,
                            format!(
                                "unknown playlist \"{}\"; playlists in this file: {}",
                                p.get_ref(),
                                if known.is_empty() { "none".into() } else { known.join(", ") }
                            ),
                        );
                    }
                    Some(ScheduleTarget::Playlist(p.get_ref().clone()))
                }
                (None, Some(f), None) => Some(ScheduleTarget::File(f.get_ref().into())),
                _ => {
                    self.error(
                        &s.name,
                        format!(
                            "schedule \"{name}\" needs exactly one of playlist = \"name\", file = \"path\" or say = \"text\""
                        ),
                    );
                    None
                }
            };
            let zone_selection = match s.zones.get_ref() {
                RawZones::Word(word) if word == "all" => ZoneSelection::All,
                RawZones::Word(word) => {
                    self.error(
                        &s.zones,
                        format!(
                            "zones = \"{word}\": write zones = \"all\" or a list such as zones = [\"{word}\"]"
                        ),
                    );
                    ZoneSelection::All
                }
                RawZones::Names(names) => {
                    if names.is_empty() {
                        self.error(&s.zones, "zones is empty; list zone names or write \"all\"");
                    }
                    for zone in names {
                        if !zones.iter().any(|z| &z.name == zone) {
                            let known: Vec<&str> = zones.iter().map(|z| z.name.as_str()).collect();
                            self.error(
                                &s.zones,
                                format!("unknown zone \"{zone}\"; zones: {}", known.join(", ")),
                            );
                        }
                    }
                    ZoneSelection::Named(names.clone())
                }
            };
            let priority = match &s.priority {
                None => Priority::Scheduled,
                Some(p) => p.get_ref().parse().unwrap_or_else(|e: crate::proto::priority::UnknownPriority| {
                    self.error(p, e.to_string());
                    Priority::Scheduled
                }),
            };
            let max_duration = s.max_duration.as_ref().and_then(|d| self.duration(d, "max_duration"));
            let misfire_grace = match &s.misfire_grace {
                None => DEFAULT_MISFIRE_GRACE,
                Some(d) if d.get_ref().trim() == "0s" || d.get_ref().trim() == "0" => Duration::ZERO,
                Some(d) => self.duration(d, "misfire_grace").unwrap_or(DEFAULT_MISFIRE_GRACE),
            };
            let on_preempt = match &s.on_preempt {
                None => OnPreempt::Pause,
                Some(v) => v.get_ref().parse::<OnPreempt>().ok().unwrap_or_else(|| {
                    self.error(
                        v,
                        format!("on_preempt \"{}\" is not valid; expected \"pause\", \"drop\" or \"rejoin\"", v.get_ref()),
                    );
                    OnPreempt::Pause
                }),
            };
            let on_busy = match &s.on_busy {
                None => OnBusy::Wait,
                Some(v) => v.get_ref().parse::<OnBusy>().ok().unwrap_or_else(|| {
                    self.error(
                        v,
                        format!("on_busy \"{}\" is not valid; expected \"wait\" or \"refuse\"", v.get_ref()),
                    );
                    OnBusy::Wait
                }),
            };
            if let (Some(cron), Some(target), true) = (cron, target, self.errors.len() == errors_before) {
                schedules.push(Schedule {
                    name: name.clone(),
                    cron,
                    target,
                    zones: zone_selection,
                    priority,
                    max_duration,
                    misfire_grace,
                    enabled: s.enabled.unwrap_or(true),
                    on_preempt,
                    on_busy,
                });
            }
        }
        schedules
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::config::{Config, PlaylistSource, ScheduleTarget, ZoneSelection};
    use crate::proto::Priority;

    const BASE: &str = "[network]\ninterface = \"127.0.0.1\"\n[[zone]]\nname = \"thon-1\"\ngroup = \"239.255.77.1:5004\"\n[[zone]]\nname = \"thon-2\"\ngroup = \"239.255.77.2:5004\"\n";

    fn errors(more: &str) -> Vec<String> {
        Config::parse(&format!("{BASE}{more}"), "loa.toml")
            .unwrap_err()
            .0
            .iter()
            .map(|e| e.to_string())
            .collect()
    }

    #[test]
    fn playlists_and_schedules_parse_with_defaults() {
        let c = Config::parse(
            &format!(
                "{BASE}[[playlist]]\nname = \"tin-sang\"\nitems = [\"a.mp3\", \"b.flac\"]\nloop = true\n\
                 [[schedule]]\nname = \"ban-tin\"\ncron = \"0 6 * * *\"\nplaylist = \"tin-sang\"\nzones = \"all\"\n\
                 [[schedule]]\nname = \"nhac\"\ncron = \"0 0 17 * * *\"\nfile = \"x.mp3\"\nzones = [\"thon-2\"]\n\
                 priority = \"background\"\nmax_duration = \"1h30m\"\nmisfire_grace = \"30s\"\non_preempt = \"drop\"\n\
                 on_busy = \"refuse\"\nenabled = false\n"
            ),
            "loa.toml",
        )
        .unwrap();
        assert_eq!(c.playlists.len(), 1);
        assert!(c.playlists[0].looped && !c.playlists[0].shuffle);
        assert_eq!(
            c.playlists[0].source,
            PlaylistSource::Items(vec!["a.mp3".into(), "b.flac".into()])
        );
        let s = &c.schedules[0];
        assert_eq!(s.target, ScheduleTarget::Playlist("tin-sang".into()));
        assert_eq!(s.zones, ZoneSelection::All);
        assert_eq!(s.priority, Priority::Scheduled);
        assert_eq!(s.misfire_grace, Duration::from_secs(300));
        assert!(s.enabled && s.max_duration.is_none());
        let s = &c.schedules[1];
        assert_eq!(s.zones, ZoneSelection::Named(vec!["thon-2".into()]));
        assert_eq!(s.max_duration, Some(Duration::from_secs(5400)));
        assert_eq!(s.misfire_grace, Duration::from_secs(30));
        assert!(!s.enabled);
    }

    #[test]
    fn schedule_errors_point_at_the_value_and_say_what_is_valid() {
        let e = errors(
            "[[schedule]]\nname = \"x\"\ncron = \"* * *\"\nfile = \"a.mp3\"\nzones = [\"thon-9\"]\npriority = \"urgent\"\n\
             max_duration = \"soon\"\non_busy = \"later\"\n",
        );
        assert_eq!(e.len(), 5, "{e:#?}");
        assert!(e[0].starts_with("loa.toml:11:8: cron expression"), "{}", e[0]);
        assert!(e[1].starts_with("loa.toml:13:9: unknown zone \"thon-9\"; zones: thon-1, thon-2"), "{}", e[1]);
        assert!(e[2].contains("14:12: unknown priority \"urgent\""), "{}", e[2]);
        assert!(e[3].contains("15:16: max_duration \"soon\" is not a duration"), "{}", e[3]);
        assert!(e[4].contains("16:11: on_busy \"later\" is not valid; expected \"wait\" or \"refuse\""), "{}", e[4]);
    }

    #[test]
    fn a_schedule_needs_exactly_one_known_target() {
        let e = errors("[[schedule]]\nname = \"x\"\ncron = \"0 6 * * *\"\nzones = \"all\"\n");
        assert!(e[0].contains("needs exactly one of playlist = \"name\", file = \"path\" or say = \"text\""), "{e:?}");
        let e = errors("[[schedule]]\nname = \"x\"\ncron = \"0 6 * * *\"\nfile = \"a.mp3\"\nsay = \"Xin chào\"\nzones = \"all\"\n");
        assert!(e[0].contains("needs exactly one of"), "{e:?}");
        let e = errors("[[schedule]]\nname = \"x\"\ncron = \"0 6 * * *\"\nplaylist = \"nope\"\nzones = \"all\"\n");
        assert!(e[0].contains("unknown playlist \"nope\"; playlists in this file: none"), "{e:?}");
    }

    #[test]
    fn a_schedule_may_say_text_with_an_optional_voice() {
        let c = Config::parse(
            &format!(
                "{BASE}[tts]\nvoice = \"vi-vn-x-central\"\nrate = 140\n\
                 [[schedule]]\nname = \"loa-sang\"\ncron = \"0 6 * * *\"\nsay = \" Xin chào bà con \"\nzones = \"all\"\n\
                 [[schedule]]\nname = \"loa-nam\"\ncron = \"0 7 * * *\"\nsay = \"Chào\"\nvoice = \"vi-vn-x-south\"\nzones = \"all\"\n"
            ),
            "loa.toml",
        )
        .unwrap();
        assert_eq!(c.tts.voice, "vi-vn-x-central");
        assert_eq!(c.tts.rate, Some(140));
        assert_eq!(c.tts.espeak, std::path::PathBuf::from("espeak-ng"));
        assert_eq!(c.schedules[0].target, ScheduleTarget::Say { text: "Xin chào bà con".into(), voice: None });
        assert_eq!(
            c.schedules[1].target,
            ScheduleTarget::Say { text: "Chào".into(), voice: Some("vi-vn-x-south".into()) }
        );
    }

    #[test]
    fn bad_tts_settings_point_at_the_value() {
        let e = errors("[tts]\nvoice = \"vi;rm -rf\"\nrate = 5\nespeak = \"\"\n");
        assert_eq!(e.len(), 3, "{e:#?}");
        assert!(e[0].starts_with("loa.toml:10:9: voice \"vi;rm -rf\" is not a voice name"), "{}", e[0]);
        assert!(e[1].starts_with("loa.toml:11:8: rate 5 is out of range 80–450"), "{}", e[1]);
        assert!(e[2].contains("espeak is empty"), "{}", e[2]);
        let e = errors("[[schedule]]\nname = \"x\"\ncron = \"0 6 * * *\"\nsay = \"  \"\nvoice = \"../x\"\nzones = \"all\"\n");
        assert_eq!(e.len(), 2, "{e:#?}");
        assert!(e[0].starts_with("loa.toml:12:7: the text to say is empty"), "{}", e[0]);
        assert!(e[1].starts_with("loa.toml:13:9: voice \"../x\" is not a voice name"), "{}", e[1]);
        let e = errors("[[schedule]]\nname = \"x\"\ncron = \"0 6 * * *\"\nfile = \"a.mp3\"\nvoice = \"vi\"\nzones = \"all\"\n");
        assert!(e[0].contains("13:9: voice is for say = \"text\""), "{e:?}");
    }

    #[test]
    fn duplicate_names_and_playlists_without_a_source_are_refused() {
        let e = errors(
            "[[playlist]]\nname = \"a\"\ndir = \"x\"\n[[playlist]]\nname = \"a\"\nitems = []\n[[playlist]]\nname = \"b\"\n",
        );
        assert!(e.iter().any(|m| m.contains("duplicate playlist name \"a\" (first defined at line 10)")), "{e:#?}");
        assert!(e.iter().any(|m| m.contains("playlist \"a\" has no items")), "{e:#?}");
        assert!(e.iter().any(|m| m.contains("playlist \"b\" needs exactly one of items")), "{e:#?}");
    }

    #[test]
    fn endpoint_probes_and_health_thresholds_parse_and_bad_ones_point_at_the_value() {
        let text = "[network]\ninterface = \"127.0.0.1\"\n[health]\nreport_interval = \"1s\"\ndegraded_loss_pct = 10.0\n\
                    offline_intervals = 4\n[[zone]]\nname = \"z\"\ngroup = \"239.255.1.1:5004\"\nendpoints = [\n\
                    { name = \"a\", address = \"10.0.0.1\" },\n\
                    { name = \"b\", address = \"10.0.0.2\", probe = \"tcp:80\", probe_interval = \"30s\" },\n\
                    { name = \"c\", address = \"10.0.0.3\", probe = \"http://10.0.0.3/status\", probe_timeout = \"500ms\" },\n]\n";
        let c = Config::parse(text, "loa.toml").unwrap();
        assert_eq!(c.health.report_interval, Duration::from_secs(1));
        assert_eq!(c.health.degraded_loss_pct, 10.0);
        assert_eq!(c.health.degraded_jitter_ms, 30.0);
        assert_eq!(c.health.offline_intervals, 4);
        let eps = &c.zones[0].endpoints;
        assert_eq!(eps[0].probe, crate::config::EndpointProbe::Rtcp);
        assert_eq!(eps[1].probe, crate::config::EndpointProbe::Tcp(80));
        assert_eq!(eps[1].probe_interval, Duration::from_secs(30));
        assert_eq!(eps[2].probe, crate::config::EndpointProbe::Http("http://10.0.0.3/status".into()));
        assert_eq!(eps[2].probe_timeout, Duration::from_millis(500));

        let e = errors("[health]\ndegraded_loss_pct = 150.0\n[[zone]]\nname = \"z3\"\ngroup = \"239.255.1.3:5004\"\n\
                        endpoints = [{ name = \"a\", address = \"10.0.0.1\", probe = \"ping\" }]\n");
        assert!(e.iter().any(|m| m.contains("degraded_loss_pct 150 is out of range")), "{e:#?}");
        assert!(e.iter().any(|m| m.contains("probe \"ping\" is not valid; expected \"rtcp\", \"tcp:PORT\"")), "{e:#?}");
    }

    #[test]
    fn zones_must_be_all_or_a_list() {
        let e = errors("[[schedule]]\nname = \"x\"\ncron = \"0 6 * * *\"\nfile = \"a\"\nzones = \"thon-1\"\n");
        assert!(e[0].contains("write zones = \"all\" or a list such as zones = [\"thon-1\"]"), "{e:?}");
    }
}
