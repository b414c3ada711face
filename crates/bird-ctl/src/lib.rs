//! BIRD control plane for `evpnd`: a control-socket client, the per-eVPN snippet renderer and
//! the atomic apply of snippet changes, following `docs/bird-notes.md`.
//!
//! * [`proto`]: sans-IO reply parser (`NNNN-`, `NNNN `, continuations, `+` async lines).
//! * [`client`]: async [`BirdClient`] over the control socket, and the [`BirdControl`] trait.
//! * [`status`]: typed `show status`, `show protocols all` and MAC route parses.
//! * [`validate`]: validation of every value that reaches a snippet or a command.
//! * [`snippet`]: [`EvpnSnippet`] and the `vpp`/`linux` [`Renderer`].
//! * [`apply`]: the [`Applier`] (stage, check, rename, configure, verify, roll back).
//!
//! The library never shells out to `birdc` or anything else.

#![warn(missing_docs)]

pub mod apply;
pub mod client;
pub mod error;
pub mod proto;
pub mod snippet;
pub mod status;
pub mod validate;
mod verify;

pub use apply::{
    Applier, ApplierConfig, ApplyError, ApplyReport, Change, StuckRecovery, VerifyPolicy,
};
pub use client::{
    BirdClient, BirdControl, ClientOptions, ConfigureOutcome, ConfigureStatus, ProtoActionOutcome,
};
pub use error::{BirdError, ConfigError};
pub use proto::{Reply, ReplyLine, ReplyParser};
pub use snippet::{Dialect, EvpnSnippet, EvpnSpec, RenderedSnippet, Renderer};
pub use status::{ChannelInfo, DaemonState, MacRoute, ProtoState, ProtocolInfo, Status};
pub use validate::{RouteDistinguisher, RouteTarget, ValidationError};
