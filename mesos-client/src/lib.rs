//! The client side of the Mesos v1 HTTP APIs (the master's scheduler API and the agent's
//! executor API), shared by `eremetic` (scheduler), `deimos-executor` and the test harness.
//!
//! What both APIs have in common lives here once:
//! - [`media`]: the two media types, how a client reads a `Content-Type` and how Mesos
//!   compares one (exactly), and decoding of a payload in either encoding;
//! - [`http`]: a [`Client`] that opens subscriptions (`SUBSCRIBE` answered by a RecordIO event
//!   stream, following `307` redirects to the leader, reading `Mesos-Stream-Id`) and sends
//!   every other call on a connection of its own; a [`Subscription`] decodes events and
//!   watches for silence (missed heartbeats);
//! - [`calls`]: call and event names for messages, terminal task states, heartbeat intervals;
//! - [`backoff`]: jittered, capped exponential back-off for re-subscription;
//! - [`redirect`]: where a leader redirect points.
//!
//! Everything that is specific to one API (which calls exist, what SUBSCRIBED means, how a
//! scheduler reconciles) stays with its user.

pub mod backoff;
pub mod calls;
mod error;
pub mod http;
pub mod media;
pub mod redirect;

pub use backoff::Backoff;
pub use calls::{heartbeat_interval, is_terminal, CallName, DEFAULT_HEARTBEAT_INTERVAL};
pub use error::ClientError;
pub use http::{Authorization, Client, ClientConfig, Subscription, STREAM_ID_HEADER};
pub use media::MediaType;
