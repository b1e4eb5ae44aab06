//! Lifecycle stages. Every new lead starts at `new`; the transition rules (the lifecycle
//! contract) build on these stages.

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    #[default]
    New,
    Engaged,
    Mql,
    Sal,
    Sql,
    Opportunity,
    Customer,
    Disqualified,
    Recycled,
}

impl Stage {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::New => "new",
            Self::Engaged => "engaged",
            Self::Mql => "mql",
            Self::Sal => "sal",
            Self::Sql => "sql",
            Self::Opportunity => "opportunity",
            Self::Customer => "customer",
            Self::Disqualified => "disqualified",
            Self::Recycled => "recycled",
        }
    }
}
