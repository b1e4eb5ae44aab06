//! Time-ordered identifiers (UUIDv7): sortable by creation, unique without coordination.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use uuid::Uuid;

macro_rules! id_type {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(value_type = String, format = Uuid))]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }

            pub fn as_uuid(&self) -> &Uuid {
                &self.0
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self)
            }
        }

        impl From<Uuid> for $name {
            fn from(u: Uuid) -> Self {
                Self(u)
            }
        }
    };
}

id_type!(
    /// The identity of a lead.
    LeadId
);
id_type!(
    /// The identity of one captured submission (one row of the inbox).
    SubmissionId
);
id_type!(
    /// The identity of an API key (not the secret token).
    KeyId
);
id_type!(
    /// The identity of an import job.
    ImportId
);
id_type!(
    /// The identity of a possible-duplicate review.
    ReviewId
);
id_type!(
    /// The identity of an account (a company leads belong to).
    AccountId
);
id_type!(
    /// The identity of a behavioural event.
    EventId
);
id_type!(
    /// The identity of one piece of CRM feedback as stored.
    FeedbackId
);
