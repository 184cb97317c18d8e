//! SCIM 2.0 (RFC 7643/7644) without HTTP: filters, PATCH, attribute projection and the
//! discovery documents. The HTTP side (bearer tokens, storage, status codes) leans on
//! these; everything here is pure and unit-tested on JSON.

pub mod discovery;
pub mod filter;
pub mod patch;
pub mod projection;
