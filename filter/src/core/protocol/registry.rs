//! The one place a protocol is registered: its name in the configuration, the section it may need there,
//! and how a connection's decoder is made. A new protocol is its folder plus one entry in each item below
//! (and, if it has a configuration section, one field of the configuration's raw form).

use serde::Deserialize;

use super::framed::{Framed, FramedConfig, FramedSpec};
use super::mysql::Mysql;
use super::nats::Nats;
use super::postgres::Postgres;
use super::redis::Redis;
use super::Protocol;

/// The `protocol` field of the configuration.
#[derive(Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ProtocolName {
    Nats,
    Redis,
    Framed,
    Mysql,
    Postgres,
}

/// The protocol sections of the configuration, as given (each only allowed with its own protocol).
#[derive(Debug, Default)]
pub struct Sections {
    pub framed: Option<FramedConfig>,
}

/// A protocol section that was refused: the field it names (`framed.length_size`), and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SectionError {
    pub field: String,
    pub reason: String,
}

impl SectionError {
    fn new(field: &str, reason: impl Into<String>) -> Self {
        SectionError { field: field.to_string(), reason: reason.into() }
    }
}

/// Which protocol the upstream speaks, with what it needs to know about it: checked once per worker, then
/// shared by every connection.
#[derive(Clone, Debug)]
pub enum ProtocolSpec {
    Nats,
    Redis,
    Framed(FramedSpec),
    Mysql,
    Postgres,
}

impl ProtocolSpec {
    /// The protocol named in the configuration, with its section checked.
    pub fn from_config(name: ProtocolName, sections: Sections) -> Result<ProtocolSpec, SectionError> {
        let Sections { framed } = sections;
        match (name, framed) {
            (ProtocolName::Nats, None) => Ok(ProtocolSpec::Nats),
            (ProtocolName::Redis, None) => Ok(ProtocolSpec::Redis),
            (ProtocolName::Mysql, None) => Ok(ProtocolSpec::Mysql),
            (ProtocolName::Postgres, None) => Ok(ProtocolSpec::Postgres),
            (ProtocolName::Framed, Some(framed)) => {
                // The framed checks name their own field ("framed.length_size: ...").
                let spec = framed.build().map_err(|message| match message.split_once(": ") {
                    Some((field, reason)) if field.starts_with("framed") => SectionError::new(field, reason),
                    _ => SectionError::new("framed", message),
                })?;
                Ok(ProtocolSpec::Framed(spec))
            }
            (ProtocolName::Framed, None) => {
                Err(SectionError::new("framed", "missing: protocol \"framed\" needs a \"framed\" section"))
            }
            (_, Some(_)) => Err(SectionError::new("framed", "only allowed with protocol \"framed\"")),
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            ProtocolSpec::Nats => "nats",
            ProtocolSpec::Redis => "redis",
            ProtocolSpec::Framed(_) => "framed",
            ProtocolSpec::Mysql => "mysql",
            ProtocolSpec::Postgres => "postgres",
        }
    }

    /// A decoder for one new connection.
    pub fn open(&self) -> Box<dyn Protocol> {
        match self {
            ProtocolSpec::Nats => Box::new(Nats::new()),
            ProtocolSpec::Redis => Box::new(Redis::new()),
            ProtocolSpec::Framed(spec) => Box::new(Framed::new(spec.clone())),
            ProtocolSpec::Mysql => Box::new(Mysql::new()),
            ProtocolSpec::Postgres => Box::new(Postgres::new()),
        }
    }
}
