//! `loa schedule add | list | remove | enable | disable`: runtime schedules,
//! as `schedule.*` with typed params, listed from the typed `ScheduleList`.
//!
//! Must not touch: daemon state (everything goes through the socket).

use std::process::ExitCode;

use crate::proto::request::{ScheduleDisable, ScheduleEnable, ScheduleRemove};
use crate::proto::say::check_text;
use crate::proto::schedule::{
    ScheduleAddParams, ScheduleChanged, ScheduleInfo, ScheduleList, ScheduleListParams, ScheduleName, ScheduleRemoved,
};

use super::args::{Global, ScheduleAddArgs, ScheduleCommand};
use super::broadcast::read_say_file;
use super::table::{spaced, table};
use super::{call_and_print, media_arg, user_error};

pub fn run(command: ScheduleCommand, global: &Global) -> ExitCode {
    match command {
        ScheduleCommand::Add(args) => add(args, global),
        ScheduleCommand::List => call_and_print(global, &ScheduleListParams {}, schedules_text),
        ScheduleCommand::Remove { name } => call_and_print(global, &ScheduleRemove(ScheduleName { name }), removed_text),
        ScheduleCommand::Enable { name } => call_and_print(global, &ScheduleEnable(ScheduleName { name }), changed_text),
        ScheduleCommand::Disable { name } => call_and_print(global, &ScheduleDisable(ScheduleName { name }), changed_text),
    }
}

fn add(args: ScheduleAddArgs, global: &Global) -> ExitCode {
    let ScheduleAddArgs {
        name,
        cron,
        playlist,
        file,
        say,
        say_file,
        voice,
        zones,
        priority,
        max_duration,
        misfire_grace,
        on_preempt,
        on_busy,
        disabled,
    } = args;
    let say = match (say, say_file) {
        (Some(text), _) => Some(text),
        (None, Some(file)) => match read_say_file(&file) {
            Ok(text) => Some(text),
            Err(e) => return user_error(e),
        },
        (None, None) => None,
    };
    if let Some(Err(e)) = say.as_deref().map(check_text) {
        return user_error(e);
    }
    let params = ScheduleAddParams {
        name,
        cron,
        playlist,
        file: file.as_deref().map(media_arg),
        say,
        voice,
        zones,
        priority,
        max_duration,
        misfire_grace,
        on_preempt,
        on_busy,
        enabled: !disabled,
    };
    call_and_print(global, &params, changed_text)
}

pub fn schedules_text(v: &ScheduleList) -> String {
    if v.schedules.is_empty() {
        return "no schedules\n".into();
    }
    let rows: Vec<Vec<String>> = v.schedules.iter().map(row).collect();
    table(&["NAME", "CRON", "PLAYS", "ZONES", "PRIORITY", "NEXT FIRE", "FROM"], &rows)
}

fn row(s: &ScheduleInfo) -> Vec<String> {
    vec![
        s.name.clone(),
        s.cron.clone(),
        s.target.clone(),
        s.zones.to_arg(),
        s.priority.to_string(),
        if s.enabled { s.next.as_deref().map(spaced).unwrap_or_default() } else { "disabled".into() },
        s.source.to_string(),
    ]
}

/// `schedule add`, `enable`, `disable`: the schedule as it is now, and the
/// daemon's note (e.g. that a config schedule's switch lasts until reload).
pub fn changed_text(v: &ScheduleChanged) -> String {
    let mut out = schedules_text(&ScheduleList { schedules: vec![v.schedule.clone()] });
    if let Some(note) = &v.note {
        out += &format!("note: {note}\n");
    }
    out
}

pub fn removed_text(v: &ScheduleRemoved) -> String {
    format!("removed schedule {}\n", v.removed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::schedule::ScheduleSource;
    use crate::proto::{OnBusy, OnPreempt, Priority, ZoneSelection};

    fn schedule(name: &str, enabled: bool) -> ScheduleInfo {
        ScheduleInfo {
            name: name.into(),
            cron: "0 6 * * *".into(),
            target: "playlist:tin-tuc".into(),
            zones: ZoneSelection::Named(vec!["thon-1".into(), "thon-2".into()]),
            priority: Priority::Scheduled,
            enabled,
            source: ScheduleSource::Config,
            max_duration_secs: None,
            misfire_grace_secs: 300,
            on_preempt: OnPreempt::Rejoin,
            on_busy: OnBusy::Wait,
            next: Some("2026-12-05T06:00:00+07:00".into()),
        }
    }

    #[test]
    fn schedules_show_their_next_fire_in_local_time_or_that_they_are_disabled() {
        let mut all = schedule("toi", true);
        all.zones = ZoneSelection::All;
        all.source = ScheduleSource::Runtime;
        let text = schedules_text(&ScheduleList { schedules: vec![schedule("sang", true), schedule("trua", false), all] });
        assert_eq!(
            text,
            "NAME  CRON       PLAYS             ZONES          PRIORITY   NEXT FIRE                  FROM\n\
             sang  0 6 * * *  playlist:tin-tuc  thon-1,thon-2  scheduled  2026-12-05 06:00:00+07:00  config\n\
             trua  0 6 * * *  playlist:tin-tuc  thon-1,thon-2  scheduled  disabled                   config\n\
             toi   0 6 * * *  playlist:tin-tuc  all            scheduled  2026-12-05 06:00:00+07:00  runtime\n"
        );
        assert_eq!(schedules_text(&ScheduleList { schedules: vec![] }), "no schedules\n");
    }

    #[test]
    fn a_changed_schedule_is_shown_with_the_daemons_note_and_a_removal_by_name() {
        let changed = ScheduleChanged { schedule: schedule("sang", false), note: Some("until the next reload".into()) };
        let text = changed_text(&changed);
        assert!(text.contains("sang  0 6 * * *") && text.contains("disabled"), "{text}");
        assert!(text.ends_with("note: until the next reload\n"), "{text}");
        assert_eq!(removed_text(&ScheduleRemoved { removed: "sang".into() }), "removed schedule sang\n");
    }
}
