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
use crate::program::{Frame, ProgramEvent, ProgramSpec};
use crate::proto::{ProgramId, ZoneId};

/// The pacer's command for a core command; `frames` is the program's
/// queue for `AddProgram`.
pub fn pacer_command(cmd: PacerCmd, frames: Option<std::sync::mpsc::Receiver<Frame>>) -> Option<pacer::Command> {
    Some(match cmd {
        PacerCmd::AddProgram { program } => pacer::Command::AddProgram { id: program.get(), frames: frames? },
        PacerCmd::Assign { zone, program } => pacer::Command::Assign { zone: zone.index(), program: program.map(ProgramId::get) },
        PacerCmd::AssignAt { zone, program, at } => {
            pacer::Command::AssignAt { zone: zone.index(), program: program.map(ProgramId::get), at }
        }
        PacerCmd::RemoveProgram { program } => pacer::Command::RemoveProgram { id: program.get() },
        PacerCmd::RetireZone { zone } => pacer::Command::RetireZone { zone: zone.index() },
        PacerCmd::Shutdown => pacer::Command::Shutdown,
    })
}

/// The core's inputs for a pacer event. `interface` is checked right away
/// when sends begin failing, so the first log line names the real cause.
pub fn pacer_inputs(event: PacerEvent, interface: Ipv4Addr) -> Vec<Input> {
    let id = |n: u64| ProgramId::new(n);
    match event {
        PacerEvent::FirstPacket { program, zone, at } => id(program)
            .map(|program| Input::Pacer(PacerInput::FirstPacket { program, zone: ZoneId::from_index(zone), at }))
            .into_iter()
            .collect(),
        PacerEvent::Progress { program, item, position } => {
            id(program).map(|program| Input::Pacer(PacerInput::Progress { program, item, position })).into_iter().collect()
        }
        PacerEvent::ProgramEnded { program } => {
            id(program).map(|program| Input::Pacer(PacerInput::ProgramEnded { program })).into_iter().collect()
        }
        PacerEvent::SendFailing { errno, target } => {
            vec![Input::SendFailing { errno, target, address: probe_address(interface) }]
        }
        PacerEvent::NotSent { counts } => not_sent(counts),
        PacerEvent::Sending { counts } => {
            let mut inputs = not_sent(counts);
            inputs.push(Input::Pacer(PacerInput::Sending));
            inputs
        }
        PacerEvent::SendIdle => vec![Input::Pacer(PacerInput::SendIdle)],
    }
}

fn not_sent(counts: Vec<(usize, u64)>) -> Vec<Input> {
    counts
        .into_iter()
        .map(|(zone, count)| Input::Pacer(PacerInput::NotSent { zone: ZoneId::from_index(zone), count }))
        .collect()
}

/// Whether `interface` is an address of this machine: binding a UDP socket
/// to it succeeds exactly then (no packet is sent).
pub fn probe_address(interface: Ipv4Addr) -> std::io::Result<()> {
    std::net::UdpSocket::bind((interface, 0)).map(drop)
}

/// The worker's spec for the core's; `live` is the connection's stream.
pub fn program_spec(worker: WorkerSpec, cache: &loudness::Cache, live: Option<LiveInput>) -> ProgramSpec {
    // A branch's start point (`worker.start`) needs the worker's
    // `ProgramSpec::start`; until that lands a branch is never made
    // (the pacer does not report `ZoneLeft` yet).
    ProgramSpec {
        items: worker.items,
        audio: worker.audio,
        queue_frames: worker.queue_frames,
        prefill_frames: worker.prefill_frames,
        looped: worker.looped,
        loudness: Some(cache.clone()),
        first_play_limit: worker.first_play_limit,
        live,
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
