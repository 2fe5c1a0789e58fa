//! The shell's two translations to other parts' interfaces: the core's
//! pacer commands to `pacer::Command` (with the frame queues the shell
//! keeps) and the pacer's events back, and a worker spec to
//! `program::ProgramSpec`. Kept in one place because these follow the
//! pacer's and the program worker's APIs.

use std::net::Ipv4Addr;

use crate::daemon::core::{Input, PacerCmd, PacerInput, WorkerEvent, WorkerSpec};
use crate::live::LiveInput;
use crate::media::loudness;
use crate::pacer::{self, PacerEvent};
use crate::program::{Frame, ProgramEvent, ProgramSpec, ResumedItem, StartPoint};

/// The pacer's command for a core command; `frames` is the program's
/// queue for `AddProgram`.
pub fn pacer_command(cmd: PacerCmd, frames: Option<std::sync::mpsc::Receiver<Frame>>) -> Option<pacer::Command> {
    Some(match cmd {
        PacerCmd::AddProgram { program } => pacer::Command::AddProgram { id: program, frames: frames? },
        PacerCmd::Assign { zone, program } => pacer::Command::Assign { zone, program },
        PacerCmd::AssignAt { zone, program, at } => pacer::Command::AssignAt { zone, program, at },
        PacerCmd::RemoveProgram { program } => pacer::Command::RemoveProgram { id: program },
        PacerCmd::RetireZone { zone } => pacer::Command::RetireZone { zone },
        PacerCmd::Shutdown => pacer::Command::Shutdown,
    })
}

/// The core's inputs for a pacer event. `interface` is checked right away
/// when sends begin failing, so the first log line names the real cause.
pub fn pacer_inputs(event: PacerEvent, interface: Ipv4Addr) -> Vec<Input> {
    let input = match event {
        PacerEvent::FirstPacket { program, zone, at } => Input::Pacer(PacerInput::FirstPacket { program, zone, at }),
        PacerEvent::Progress { program, item, position } => Input::Pacer(PacerInput::Progress { program, item, position }),
        PacerEvent::ZoneLeft { zone, program, item, position } => {
            Input::Pacer(PacerInput::ZoneLeft { zone, program, item, position })
        }
        PacerEvent::ProgramEnded { program } => Input::Pacer(PacerInput::ProgramEnded { program }),
        PacerEvent::SendFailing { errno, target } => Input::SendFailing { errno, target, address: probe_address(interface) },
        PacerEvent::NotSent { zone, count } => Input::Pacer(PacerInput::NotSent { zone, count }),
        PacerEvent::Sending => Input::Pacer(PacerInput::Sending),
        PacerEvent::SendIdle => Input::Pacer(PacerInput::SendIdle),
        // Logged here, not on the pacer thread, which reports the first and
        // every 1000th.
        PacerEvent::SendError { zone, target, errno, errors } => {
            let err = errno.map_or_else(|| "no socket".to_string(), |e| std::io::Error::from_raw_os_error(e).to_string());
            tracing::warn!(zone = %zone, %target, errors, "cannot send: {err}");
            return Vec::new();
        }
        // The core logs it, naming the zones and programs it hit.
        PacerEvent::Stalled { late, skipped_ticks } => Input::Pacer(PacerInput::Stalled { late, skipped_ticks }),
        PacerEvent::KeysRefused { zone } => {
            tracing::error!(zone = %zone, "the pacer could not install the zone's new SRTP keys; it keeps sealing with the old ones");
            return Vec::new();
        }
    };
    vec![input]
}

/// Whether `interface` is an address of this machine: binding a UDP socket
/// to it succeeds exactly then (no packet is sent).
pub fn probe_address(interface: Ipv4Addr) -> std::io::Result<()> {
    std::net::UdpSocket::bind((interface, 0)).map(drop)
}

/// The worker's spec for the core's; `live` is the connection's stream.
pub fn program_spec(worker: WorkerSpec, cache: &loudness::Cache, live: Option<LiveInput>) -> ProgramSpec {
    ProgramSpec {
        items: worker.items,
        audio: worker.audio,
        queue_frames: worker.queue_frames,
        prefill_frames: worker.prefill_frames,
        looped: worker.looped,
        loudness: Some(cache.clone()),
        first_play_limit: worker.first_play_limit,
        urgent: worker.urgent,
        live,
        start: worker.start.map(|s| StartPoint {
            item: s.item,
            position: s.position,
            resumed: s.resumed.map(|r| ResumedItem { sha256: r.sha256, gain_db: r.gain_db }),
        }),
    }
}

/// The core's view of a worker event; the opened file (for the hash) is
/// handed back separately for the shell to keep.
pub fn worker_event(event: ProgramEvent) -> (WorkerEvent, Option<std::fs::File>) {
    match event {
        ProgramEvent::ItemStarted { item, path, duration, content, sha256, gain_db } => {
            (WorkerEvent::ItemStarted { item, path, duration, sha256, gain_db }, content)
        }
        ProgramEvent::Measured { sha256, measured, .. } => (WorkerEvent::Measured { sha256, measured }, None),
        ProgramEvent::ItemSkipped { item, path, error } => (WorkerEvent::ItemSkipped { item, path, error: error.to_string() }, None),
        ProgramEvent::ItemEncoded { item, encoded, error, sha256, .. } => {
            (WorkerEvent::ItemEncoded { item, encoded, error: error.map(|e| e.to_string()), sha256 }, None)
        }
        ProgramEvent::Ready => (WorkerEvent::Ready, None),
        ProgramEvent::Finished { .. } => (WorkerEvent::Finished, None),
    }
}
