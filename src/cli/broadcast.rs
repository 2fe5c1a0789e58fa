//! `loa play`, `loa say` and `loa stop`: programs put on air now and taken
//! off, as `broadcast.start` / `broadcast.stop` with typed params.
//!
//! Must not touch: daemon state (everything goes through the socket).

use std::path::Path;
use std::process::ExitCode;

use crate::proto::broadcast::{StartParams, Started, StopParams, Stopped};
use crate::proto::say::{check_text, MAX_CHARS};
use crate::proto::OnBusy;

use super::args::{Global, PlayArgs, SayArgs, StopArgs};
use super::{call_and_print, media_arg, user_error};

pub fn play(args: PlayArgs, global: &Global) -> ExitCode {
    let PlayArgs { files, playlist, zones, priority, name, looped, refuse_if_busy, max_duration } = args;
    if files.is_empty() && playlist.is_none() {
        return user_error("give files to play or --playlist NAME");
    }
    let params = StartParams {
        files: files.iter().map(|f| media_arg(f)).collect(),
        playlist,
        say: None,
        voice: None,
        zones,
        priority,
        name,
        looped,
        on_busy: refuse_if_busy.then_some(OnBusy::Refuse),
        max_duration,
    };
    call_and_print(global, &params, play_text)
}

pub fn say(args: SayArgs, global: &Global) -> ExitCode {
    let SayArgs { text, file, zones, voice, priority, name, refuse_if_busy } = args;
    let text = match (text, file) {
        (Some(text), _) => text,
        (None, Some(file)) => match read_say_file(&file) {
            Ok(text) => text,
            Err(e) => return user_error(e),
        },
        (None, None) => return user_error("give the text to say, or --file FILE"),
    };
    if let Err(e) = check_text(&text) {
        return user_error(e);
    }
    let params = StartParams {
        files: Vec::new(),
        playlist: None,
        say: Some(text),
        voice,
        zones,
        priority,
        name,
        looped: false,
        on_busy: refuse_if_busy.then_some(OnBusy::Refuse),
        max_duration: None,
    };
    call_and_print(global, &params, play_text)
}

pub fn stop(args: StopArgs, global: &Global) -> ExitCode {
    let params = match args {
        StopArgs { id: Some(id), .. } => StopParams { id: Some(id), ..Default::default() },
        StopArgs { zone: Some(zone), .. } => StopParams { zone: Some(zone), ..Default::default() },
        StopArgs { all: true, .. } => StopParams { all: true, ..Default::default() },
        _ => return user_error("say what to stop: a program id, --zone Z or --all"),
    };
    call_and_print(global, &params, stop_text)
}

/// Text for `loa say --file` and `loa schedule add --say-file`: UTF-8, not
/// blank, at most `MAX_CHARS` characters (checked before reading a huge
/// file whole).
pub fn read_say_file(path: &Path) -> Result<String, String> {
    let meta = std::fs::metadata(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    // Vietnamese letters take up to 4 bytes in UTF-8.
    if meta.len() > 4 * MAX_CHARS as u64 + 16 {
        return Err(format!(
            "{} is {} bytes: longer than the {MAX_CHARS} characters loa will speak; record a file for long notices",
            path.display(),
            meta.len(),
        ));
    }
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let text = String::from_utf8(bytes).map_err(|_| format!("{} is not UTF-8 text; save it as UTF-8", path.display()))?;
    let text = text.trim_start_matches('\u{feff}').to_string();
    check_text(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(text)
}

pub fn play_text(v: &Started) -> String {
    let on = if v.zones.is_empty() { "no zone yet".into() } else { v.zones.join(", ") };
    let mut out = format!("program #{} on air on {on}", v.id);
    if !v.waiting.is_empty() {
        out += &format!("; waiting for {} (busy with higher or earlier programs)", v.waiting.join(", "));
    }
    out + &format!("\nstop it with: loa stop {}\n", v.id)
}

pub fn stop_text(v: &Stopped) -> String {
    if v.stopped.is_empty() {
        return "nothing was playing\n".into();
    }
    format!("stopped {}\n", v.stopped.iter().map(|i| format!("#{i}")).collect::<Vec<_>>().join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::ProgramId;

    fn id(n: u64) -> ProgramId {
        ProgramId::new(n).unwrap()
    }

    #[test]
    fn play_says_where_it_is_on_air_what_it_waits_for_and_how_to_stop_it() {
        let started = Started { id: id(7), zones: vec!["thon-1".into()], waiting: vec!["thon-2".into(), "thon-3".into()] };
        assert_eq!(
            play_text(&started),
            "program #7 on air on thon-1; waiting for thon-2, thon-3 (busy with higher or earlier programs)\nstop it with: loa stop 7\n"
        );
        let waiting = Started { id: id(8), zones: vec![], waiting: vec!["thon-1".into()] };
        assert!(play_text(&waiting).starts_with("program #8 on air on no zone yet; waiting for thon-1"));
    }

    #[test]
    fn stop_lists_what_it_stopped_or_that_nothing_played() {
        assert_eq!(stop_text(&Stopped { stopped: vec![id(3), id(5)] }), "stopped #3, #5\n");
        assert_eq!(stop_text(&Stopped { stopped: vec![] }), "nothing was playing\n");
    }

    #[test]
    fn a_say_file_must_be_utf8_text_of_a_few_thousand_characters() {
        let dir = tempfile::tempdir().unwrap();
        let ok = dir.path().join("ok.txt");
        std::fs::write(&ok, "\u{feff}Xin chào bà con").unwrap();
        assert_eq!(read_say_file(&ok).unwrap(), "Xin chào bà con", "the BOM is dropped");
        let latin1 = dir.path().join("latin1.txt");
        std::fs::write(&latin1, b"Xin ch\xe0o").unwrap();
        assert!(read_say_file(&latin1).unwrap_err().ends_with("is not UTF-8 text; save it as UTF-8"));
        let huge = dir.path().join("huge.txt");
        std::fs::write(&huge, "a".repeat(4 * MAX_CHARS + 17)).unwrap();
        assert!(read_say_file(&huge).unwrap_err().contains("longer than the 5000 characters loa will speak"));
        let blank = dir.path().join("blank.txt");
        std::fs::write(&blank, "  \n").unwrap();
        assert!(read_say_file(&blank).unwrap_err().ends_with("the text to say is empty"));
    }
}
