//! `loa playlist load | list`, as `playlist.*` with typed params and
//! answers.
//!
//! Must not touch: daemon state (everything goes through the socket).

use std::process::ExitCode;

use crate::proto::playlist::{PlaylistInfo, PlaylistList, PlaylistListParams, PlaylistLoadParams, PlaylistLoaded};

use super::args::{Global, PlaylistCommand};
use super::status::clock;
use super::table::table;
use super::{call_and_print, media_arg};

pub fn run(command: PlaylistCommand, global: &Global) -> ExitCode {
    match command {
        PlaylistCommand::Load { name, file } => {
            call_and_print(global, &PlaylistLoadParams { name, file: media_arg(&file) }, loaded_text)
        }
        PlaylistCommand::List => call_and_print(global, &PlaylistListParams {}, playlists_text),
    }
}

pub fn playlists_text(v: &PlaylistList) -> String {
    if v.playlists.is_empty() {
        return "no playlists\n".into();
    }
    let rows: Vec<Vec<String>> = v.playlists.iter().map(row).collect();
    table(&["NAME", "ITEMS", "DURATION", "OPTIONS", "FROM", "SOURCE"], &rows)
}

fn row(p: &PlaylistInfo) -> Vec<String> {
    let mut options = Vec::new();
    if p.shuffle {
        options.push("shuffle");
    }
    if p.looped {
        options.push("loop");
    }
    let unknown = match p.unknown_durations {
        0 => String::new(),
        n => format!(" (+{n} unknown)"),
    };
    vec![
        p.name.clone(),
        p.items.to_string(),
        format!("{}{unknown}", clock(Some(p.duration_secs))),
        options.join(","),
        p.origin.to_string(),
        match &p.error {
            Some(e) => format!("ERROR: {e}"),
            None => p.source.clone(),
        },
    ]
}

pub fn loaded_text(v: &PlaylistLoaded) -> String {
    let mut out = format!("playlist {} loaded: {} item(s)\n", v.name, v.items);
    for missing in &v.missing {
        out += &format!("warning: {missing} does not exist (it will be skipped when played)\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::playlist::PlaylistOrigin;

    fn playlist(name: &str) -> PlaylistInfo {
        PlaylistInfo {
            name: name.into(),
            origin: PlaylistOrigin::Runtime,
            source: "/m/tin.m3u".into(),
            items: 3,
            duration_secs: 125.0,
            unknown_durations: 0,
            shuffle: false,
            looped: false,
            error: None,
        }
    }

    #[test]
    fn playlists_show_items_duration_options_and_errors() {
        let mut music = playlist("nhac");
        music.shuffle = true;
        music.looped = true;
        music.unknown_durations = 1;
        music.origin = PlaylistOrigin::Config;
        let mut broken = playlist("hong");
        broken.error = Some("folder not found".into());
        let text = playlists_text(&PlaylistList { playlists: vec![playlist("tin"), music, broken] });
        assert_eq!(
            text,
            "NAME  ITEMS  DURATION           OPTIONS       FROM     SOURCE\n\
             tin   3      2:05                             runtime  /m/tin.m3u\n\
             nhac  3      2:05 (+1 unknown)  shuffle,loop  config   /m/tin.m3u\n\
             hong  3      2:05                             runtime  ERROR: folder not found\n"
        );
        assert_eq!(playlists_text(&PlaylistList { playlists: vec![] }), "no playlists\n");
    }

    #[test]
    fn a_loaded_playlist_warns_about_each_missing_item() {
        let loaded = PlaylistLoaded { name: "tin".into(), items: 2, missing: vec!["/m/b.mp3".into()] };
        assert_eq!(
            loaded_text(&loaded),
            "playlist tin loaded: 2 item(s)\nwarning: /m/b.mp3 does not exist (it will be skipped when played)\n"
        );
    }
}
