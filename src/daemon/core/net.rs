//! The pacer's events, and whether the sending interface works (the
//! decisions are `net::netwatch`'s; this turns them into effects).

use std::net::SocketAddr;

use super::io::{Effect, HealthCmd, PacerInput};
use super::state::Cut;
use super::Core;
use crate::net::netwatch::NetAction;
use crate::proto::Outcome;

impl Core {
    pub(super) fn pacer_event(&mut self, event: PacerInput) {
        let now = self.now.mono;
        match event {
            PacerInput::FirstPacket { program, zone, at } => self.first_packet(program, zone, at),
            PacerInput::Progress { program, item, position } => self.progress(program, item, position),
            PacerInput::ZoneLeft { zone, program, item, position } => self.zone_left(zone, program, Cut { item, position }),
            PacerInput::ProgramEnded { program } => self.end_program(program, Outcome::Completed, None, true),
            PacerInput::NotSent { zone, count } => self.net.handle_not_sent(&[(zone.index(), count)]),
            PacerInput::Sending => {
                // The final counts came just before, as `NotSent`.
                self.net.handle_sending(now, &[]);
                self.net_actions();
            }
            PacerInput::SendIdle => {
                self.net.handle_send_idle(now);
                self.net_actions();
            }
            PacerInput::Stalled { late, skipped_ticks } => self.stalled(late, skipped_ticks),
        }
    }

    pub(super) fn send_failing(&mut self, errno: Option<i32>, target: SocketAddr, address: std::io::Result<()>) {
        self.net.handle_send_failing(self.now.mono, errno, target, address);
        self.net_actions();
    }

    /// Once a second: is the interface address still (or yet) here?
    pub(super) fn address_probed(&mut self, result: std::io::Result<()>) {
        self.net.handle_probe(self.now.mono, result);
        self.net.handle_tick(self.now.mono);
        self.net_actions();
    }

    pub(super) fn socket_built(&mut self, result: Result<(), String>) {
        match result {
            Ok(()) => self.net.handle_socket_built(self.now.mono),
            Err(e) => {
                tracing::debug!("cannot build the sender socket yet: {e}");
                self.net.handle_socket_failed(self.now.mono);
            }
        }
        self.net_actions();
    }

    pub(super) fn net_actions(&mut self) {
        while let Some(action) = self.net.poll_action() {
            match action {
                NetAction::Warn(text) => tracing::warn!("{text}"),
                NetAction::Info(text) => tracing::info!("{text}"),
                NetAction::BuildSocket => self.emit(Effect::BuildSocket),
                NetAction::Rejoin => self.emit(Effect::Health(HealthCmd::Rejoin)),
            }
        }
        match (self.net.is_down(), self.net_down_at) {
            (true, None) => {
                self.net_down_at = Some(self.now.wall);
                self.tell_health_who_sends();
            }
            (false, Some(_)) => {
                self.net_down_at = None;
                self.tell_health_who_sends();
            }
            _ => {}
        }
    }

    /// Speakers are judged offline only while their zone sends; while our
    /// own interface cannot send, their silence is our fault, not theirs.
    /// When sending resumes they get a fresh grace period.
    fn tell_health_who_sends(&mut self) {
        let down = self.net.is_down();
        for zone in self.live_zones() {
            let sending = !down && self.arbiter.owner(zone).is_some();
            let zone = self.zone_name(zone).to_string();
            self.emit(Effect::Health(HealthCmd::ZoneSending { zone, sending }));
        }
    }
}
