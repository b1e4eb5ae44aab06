//! Provider protocols in and out: the webhook adapters that verify, parse and standardize
//! what ad platforms, form tools and CRMs send ([`channels`]), and the clients that hand
//! leads to destinations ([`delivery`]).
#![forbid(unsafe_code)]

pub mod alerts;
pub mod channels;
pub mod delivery;
mod email;
