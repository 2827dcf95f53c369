//! Tokens: the login and refresh bodies and the tokens they answer with.

use saas_core::auth::TokenPair;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// `POST /api/token/` and `POST /api/platform/token/`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct LoginIn {
    /// Username.
    pub username: String,
    /// Password.
    pub password: String,
}

/// `POST /api/token/refresh/`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct RefreshIn {
    /// A refresh token (usable once).
    pub refresh: String,
}

/// An access and refresh token pair.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TokenPairOut {
    /// Short-lived access token (send as `Authorization: Bearer <access>`).
    pub access: String,
    /// Single-use refresh token.
    pub refresh: String,
}

impl From<TokenPair> for TokenPairOut {
    fn from(p: TokenPair) -> Self {
        TokenPairOut {
            access: p.access,
            refresh: p.refresh,
        }
    }
}

/// A platform access token.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PlatformTokenOut {
    /// Send as `Authorization: Bearer <access>` to `/api/platform/…`.
    pub access: String,
}
