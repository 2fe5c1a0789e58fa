//! The control protocol's methods, typed: each method's params type knows
//! its name and its response type ([`Method`]), and [`Request`] is every
//! method the daemon answers. The method names are spelled here and only
//! here; the CLI, the daemon and later the web console and the
//! source-system adapter all go through these types.

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use super::broadcast::{LiveStartParams, StartParams, Started, StopParams, Stopped};
use super::health::{EndpointList, EndpointsParams};
use super::history::{History, HistoryParams};
use super::keys::{ZoneKeysInfo, ZoneKeysParams};
use super::playlist::{PlaylistList, PlaylistListParams, PlaylistLoadParams, PlaylistLoaded};
use super::reload::{ReloadParams, Reloaded};
use super::rpc::RpcError;
use super::schedule::{ScheduleAddParams, ScheduleChanged, ScheduleList, ScheduleListParams, ScheduleName, ScheduleRemoved};
use super::speakers::{SpeakerAdded, SpeakerList, SpeakerRevoked, SpeakersAddParams, SpeakersListParams, SpeakersRevokeParams};
use super::status::{Status, StatusParams};

/// A method's params type: its wire name and what it answers.
pub trait Method: Serialize + DeserializeOwned {
    const NAME: &'static str;
    type Response: Serialize + DeserializeOwned;
}

macro_rules! params_alias {
    ($($(#[$meta:meta])* $name:ident = $inner:ty;)+) => {
        $(
            $(#[$meta])*
            #[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
            #[serde(transparent)]
            pub struct $name(pub $inner);
        )+
    };
}

params_alias! {
    /// `endpoints.list` params.
    EndpointsList = EndpointsParams;
    /// `endpoints.subscribe` params: the list now, then `endpoints.changed`
    /// notifications on the same connection.
    EndpointsSubscribe = EndpointsParams;
    /// `schedule.remove` params.
    ScheduleRemove = ScheduleName;
    /// `schedule.enable` params.
    ScheduleEnable = ScheduleName;
    /// `schedule.disable` params.
    ScheduleDisable = ScheduleName;
}

macro_rules! methods {
    ($( $(#[$meta:meta])* $variant:ident($params:ty) = $name:literal => $response:ty; )+) => {
        $( impl Method for $params {
            const NAME: &'static str = $name;
            type Response = $response;
        } )+

        /// Every request the daemon answers, params typed.
        #[derive(Debug, Clone, PartialEq)]
        pub enum Request {
            $( $(#[$meta])* $variant($params), )+
        }

        /// Every answer, one per method; on the wire it is the bare result.
        #[derive(Debug, Clone, PartialEq, Serialize)]
        #[serde(untagged)]
        pub enum Response {
            $( $variant($response), )+
        }

        /// Every method name, in the order operators read them.
        pub const METHODS: &[&str] = &[$($name),+];

        impl Request {
            /// Reads `params` (null counts as `{}`) as the params of
            /// `method`. Errors say in plain words what was wrong.
            pub fn parse(method: &str, params: Value) -> Result<Request, RpcError> {
                match method {
                    $( $name => params_of::<$params>(params).map(Request::$variant), )+
                    other => Err(RpcError::method_not_found(other)),
                }
            }

            pub fn method(&self) -> &'static str {
                match self {
                    $( Request::$variant(_) => $name, )+
                }
            }

            /// The params as they go on the wire.
            pub fn params(&self) -> Value {
                match self {
                    $( Request::$variant(p) => serde_json::to_value(p).expect("params serialize"), )+
                }
            }
        }
    };
}

methods! {
    Status(StatusParams) = "status" => Status;
    EndpointsList(EndpointsList) = "endpoints.list" => EndpointList;
    EndpointsSubscribe(EndpointsSubscribe) = "endpoints.subscribe" => EndpointList;
    Start(StartParams) = "broadcast.start" => Started;
    Stop(StopParams) = "broadcast.stop" => Stopped;
    ScheduleList(ScheduleListParams) = "schedule.list" => ScheduleList;
    ScheduleAdd(ScheduleAddParams) = "schedule.add" => ScheduleChanged;
    ScheduleRemove(ScheduleRemove) = "schedule.remove" => ScheduleRemoved;
    ScheduleEnable(ScheduleEnable) = "schedule.enable" => ScheduleChanged;
    ScheduleDisable(ScheduleDisable) = "schedule.disable" => ScheduleChanged;
    PlaylistList(PlaylistListParams) = "playlist.list" => PlaylistList;
    PlaylistLoad(PlaylistLoadParams) = "playlist.load" => PlaylistLoaded;
    Reload(ReloadParams) = "config.reload" => Reloaded;
    History(HistoryParams) = "history" => History;
    SpeakersAdd(SpeakersAddParams) = "speakers.add" => SpeakerAdded;
    SpeakersList(SpeakersListParams) = "speakers.list" => SpeakerList;
    SpeakersRevoke(SpeakersRevokeParams) = "speakers.revoke" => SpeakerRevoked;
    /// A secret: an SRTP zone's keys (`loa sdp`).
    ZoneKeys(ZoneKeysParams) = "zone.keys" => ZoneKeysInfo;
    /// The connection carries PCM after this request (see [`STREAM_METHODS`]).
    LiveStart(LiveStartParams) = "live.start" => Started;
}

/// Methods after which the connection carries a data stream instead of
/// request lines. Each must be the first request on its connection.
pub const STREAM_METHODS: &[&str] = &[LiveStartParams::NAME];

/// `params` as `P`, with the path of a bad field in the message
/// ("max_duration: \"soon\" is not a duration …").
pub fn params_of<P: Method>(params: Value) -> Result<P, RpcError> {
    let params = if params.is_null() { Value::Object(Default::default()) } else { params };
    serde_path_to_error::deserialize(params).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if path == "." {
            RpcError::invalid_params(format!("{}: {inner}", P::NAME))
        } else {
            RpcError::invalid_params(format!("{}: {path}: {inner}", P::NAME))
        }
    })
}

/// The result of `P`'s call, read back by a client.
pub fn response_of<P: Method>(result: Value) -> Result<P::Response, String> {
    serde_path_to_error::deserialize(result).map_err(|e| {
        format!("the daemon's answer to {} is not what this loa expects ({}: {}); are the daemon and the CLI the same version?", P::NAME, e.path(), e.inner())
    })
}

#[cfg(test)]
mod tests;
