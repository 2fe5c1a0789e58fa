//! How a program behaves when zones are contested: closed sets stored in
//! the config, the database and requests.

crate::words! {
    /// What a program does when a zone it wants is held by an equal or
    /// higher program at the time it asks.
    pub enum OnBusy("on_busy") {
        /// Wait for the zone (it plays on whatever it can get meanwhile).
        Wait = "wait",
        /// Refuse the request; nothing plays.
        Refuse = "refuse",
    }
}

crate::words! {
    /// What a program does when a higher one takes a zone it is playing on.
    pub enum OnPreempt("on_preempt") {
        /// Keep its place on that zone: when the zone is free again it
        /// resumes there from the frame it was cut at, even while the
        /// program's other zones have played on (a second decode for the
        /// zone while they are apart). Every zone hears the whole program.
        Pause = "pause",
        /// End it (history says `preempted`).
        Drop = "drop",
        /// The zone rejoins the program where its other zones now are
        /// (what was cut there is not heard): for music, not for news.
        Rejoin = "rejoin",
    }
}

// The words! macro owns the derive list, so Default is written out.
#[allow(clippy::derivable_impls)]
impl Default for OnBusy {
    fn default() -> OnBusy {
        OnBusy::Wait
    }
}

#[allow(clippy::derivable_impls)]
impl Default for OnPreempt {
    fn default() -> OnPreempt {
        OnPreempt::Pause
    }
}
