//! Validation of `[[playlist]]` and `[[schedule]]` tables: what plays, when
//! and where. Names are checked against the zones and playlists of the same
//! file, so a typo is a FILE:LINE:COL error rather than a silent no-show at
//! 6 a.m.

use std::collections::HashMap;
use std::path::PathBuf;

use toml::Spanned;

use super::raw::{RawPlaylist, RawSchedule, RawZones};
use super::schedule::{check, Field, Known, ScheduleFields};
use super::validate::Validator;
use super::{Playlist, PlaylistSource, Schedule, Zone};

/// Names of playlists and schedules are typed on the command line.
pub(crate) fn name_ok(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// Parses "90s", "30m", "1h30m", "1h 30m" (jiff's friendly format).
pub(crate) use crate::proto::text::parse_duration;

fn word(v: &Option<Spanned<String>>) -> Option<&str> {
    v.as_ref().map(|v| v.get_ref().as_str())
}

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
        self.check_duplicate(at, what, seen);
    }

    fn check_duplicate(&mut self, at: &Spanned<String>, what: &str, seen: &mut HashMap<String, usize>) {
        let name = at.get_ref();
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

    /// `[[schedule]]` tables, through the one validator the control
    /// socket uses too (`super::schedule::check`); its errors are placed
    /// on the value they are about.
    pub(super) fn schedules(
        &mut self,
        raw: &[Spanned<RawSchedule>],
        zones: &[Zone],
        playlists: &[Playlist],
    ) -> Vec<Schedule> {
        let zone_names: Vec<String> = zones.iter().map(|z| z.name.clone()).collect();
        let playlist_names: Vec<String> = playlists.iter().map(|p| p.name.clone()).collect();
        let known = Known { zones: &zone_names, playlists: &playlist_names };
        let mut seen = HashMap::new();
        let mut schedules = Vec::new();
        for table in raw {
            let s = table.get_ref();
            self.check_duplicate(&s.name, "schedule", &mut seen);
            // A single word is one zone's name, as on the wire.
            let one;
            let names = match s.zones.get_ref() {
                RawZones::Word(w) if w == "all" => None,
                RawZones::Word(w) => {
                    one = [w.clone()];
                    Some(&one[..])
                }
                RawZones::Names(names) => Some(&names[..]),
            };
            let fields = ScheduleFields {
                name: s.name.get_ref(),
                cron: s.cron.get_ref(),
                playlist: word(&s.playlist),
                file: word(&s.file),
                say: word(&s.say),
                voice: word(&s.voice),
                zones: names,
                priority: word(&s.priority),
                max_duration: word(&s.max_duration),
                misfire_grace: word(&s.misfire_grace),
                on_preempt: word(&s.on_preempt),
                on_busy: word(&s.on_busy),
                enabled: s.enabled.unwrap_or(true),
            };
            match check(&fields, known) {
                Ok(schedule) => schedules.push(schedule),
                Err(errors) => {
                    for e in errors {
                        let span = match e.field {
                            Field::Name | Field::Target => Some(s.name.span()),
                            Field::Cron => Some(s.cron.span()),
                            Field::Playlist => s.playlist.as_ref().map(Spanned::span),
                            Field::Say => s.say.as_ref().map(Spanned::span),
                            Field::Voice => s.voice.as_ref().map(Spanned::span),
                            Field::Zones => Some(s.zones.span()),
                            Field::Priority => s.priority.as_ref().map(Spanned::span),
                            Field::MaxDuration => s.max_duration.as_ref().map(Spanned::span),
                            Field::MisfireGrace => s.misfire_grace.as_ref().map(Spanned::span),
                            Field::OnPreempt => s.on_preempt.as_ref().map(Spanned::span),
                            Field::OnBusy => s.on_busy.as_ref().map(Spanned::span),
                        };
                        let span = span.unwrap_or_else(|| table.span());
                        self.errors.push(self.loc.at(Some(span), e.to_string()));
                    }
                }
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
        assert!(e[0].starts_with("loa.toml:11:8: cron: cron expression"), "{}", e[0]);
        assert!(e[1].starts_with("loa.toml:13:9: zones: unknown zone \"thon-9\"; zones: thon-1, thon-2"), "{}", e[1]);
        assert!(e[2].contains("14:12: priority: unknown priority \"urgent\""), "{}", e[2]);
        assert!(e[3].contains("15:16: max_duration: \"soon\" is not a duration"), "{}", e[3]);
        assert!(e[4].contains("16:11: on_busy: unknown on_busy \"later\"; valid: wait, refuse"), "{}", e[4]);
    }

    #[test]
    fn a_schedule_needs_exactly_one_known_target() {
        let e = errors("[[schedule]]\nname = \"x\"\ncron = \"0 6 * * *\"\nzones = \"all\"\n");
        assert!(e[0].contains("a schedule needs exactly one of playlist (a name), file (a path) or say (text to speak)"), "{e:?}");
        let e = errors("[[schedule]]\nname = \"x\"\ncron = \"0 6 * * *\"\nfile = \"a.mp3\"\nsay = \"Xin chào\"\nzones = \"all\"\n");
        assert!(e[0].contains("needs exactly one of"), "{e:?}");
        let e = errors("[[schedule]]\nname = \"x\"\ncron = \"0 6 * * *\"\nplaylist = \"nope\"\nzones = \"all\"\n");
        assert!(e[0].contains("playlist: unknown playlist \"nope\"; playlists: none"), "{e:?}");
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
        assert!(e[0].starts_with("loa.toml:12:7: say: the text to say is empty"), "{}", e[0]);
        assert!(e[1].starts_with("loa.toml:13:9: voice: voice \"../x\" is not a voice name"), "{}", e[1]);
        let e = errors("[[schedule]]\nname = \"x\"\ncron = \"0 6 * * *\"\nfile = \"a.mp3\"\nvoice = \"vi\"\nzones = \"all\"\n");
        assert!(e[0].contains("13:9: voice: a voice is only for a schedule that says text"), "{e:?}");
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
    fn a_single_zone_word_is_that_zone_and_a_comma_is_not_part_of_a_name() {
        let c = Config::parse(&format!("{BASE}[[schedule]]\nname = \"x\"\ncron = \"0 6 * * *\"\nfile = \"a\"\nzones = \"thon-1\"\n"), "loa.toml").unwrap();
        assert_eq!(c.schedules[0].zones, ZoneSelection::Named(vec!["thon-1".into()]));
        let e = errors("[[schedule]]\nname = \"x\"\ncron = \"0 6 * * *\"\nfile = \"a\"\nzones = \"thon-1,thon-2\"\n");
        assert_eq!(e, ["loa.toml:13:9: zones: \"thon-1,thon-2\" is not one zone name; list zones one by one, e.g. [\"thon-1\", \"thon-2\"]"]);
    }
}
