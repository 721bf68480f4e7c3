//! Who is calling, for both edges: REST handlers and the WebSocket upgrade
//! take a `Caller` from the request, and every command carries it into the
//! domain. Authentication plugs in here; today every caller is local.

use std::convert::Infallible;

use axum::{extract::FromRequestParts, http::request::Parts};

use crate::model::Caller;

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = Infallible;

    async fn from_request_parts(_parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(Caller::local())
    }
}
