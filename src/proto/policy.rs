//! How a program behaves when zones are contested: closed sets stored in
//! the config, the database and requests.

/// What a program does when a zone it wants is held by an equal or higher
/// program at the time it asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnBusy {
    /// Wait for the zone (it plays on whatever it can get meanwhile).
    #[default]
    Wait,
    /// Refuse the request; nothing plays.
    Refuse,
}

/// What a program does when a higher one takes a zone it is playing on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnPreempt {
    /// Keep its place; resume where it paused when the zone is free.
    #[default]
    Pause,
    /// End it (history says `preempted`).
    Drop,
}

impl OnBusy {
    pub fn as_str(self) -> &'static str {
        match self {
            OnBusy::Wait => "wait",
            OnBusy::Refuse => "refuse",
        }
    }
    pub fn parse(s: &str) -> Option<OnBusy> {
        match s {
            "wait" => Some(OnBusy::Wait),
            "refuse" => Some(OnBusy::Refuse),
            _ => None,
        }
    }
}

impl OnPreempt {
    pub fn as_str(self) -> &'static str {
        match self {
            OnPreempt::Pause => "pause",
            OnPreempt::Drop => "drop",
        }
    }
    pub fn parse(s: &str) -> Option<OnPreempt> {
        match s {
            "pause" => Some(OnPreempt::Pause),
            "drop" => Some(OnPreempt::Drop),
            _ => None,
        }
    }
}
