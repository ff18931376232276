//! JSON schemas (OpenAPI 3.1, through `utoipa`) of the core types whose JSON form is
//! written by hand: hex strings and decimal amounts. Compiled only with the `openapi`
//! feature, which `agora-api` turns on; nothing here takes part in the ledger.

use crate::block::EntryPayload;
use crate::crypto::{PublicKey, Signature};
use crate::hash::Hash32;
use crate::types::{AccountId, Amount};
use std::borrow::Cow;
use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Schema, Type};
use utoipa::openapi::RefOr;

macro_rules! string_schema {
    ($ty:ty, $name:literal, $description:literal, $pattern:literal) => {
        impl utoipa::PartialSchema for $ty {
            fn schema() -> RefOr<Schema> {
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .description(Some($description))
                    .pattern(Some($pattern))
                    .into()
            }
        }

        impl utoipa::ToSchema for $ty {
            fn name() -> Cow<'static, str> {
                Cow::Borrowed($name)
            }
        }
    };
}

string_schema!(
    Hash32,
    "Hash32",
    "32 bytes as 64 lowercase hex digits",
    "^[0-9a-f]{64}$"
);
string_schema!(
    AccountId,
    "AccountId",
    "An account (or validator) id: H(agora/account/v1, public key), 64 lowercase hex digits",
    "^[0-9a-f]{64}$"
);
string_schema!(
    Amount,
    "Amount",
    "Base units (one token is 1,000,000) as a decimal string, up to 2^128 - 1",
    "^[0-9]{1,39}$"
);
string_schema!(
    PublicKey,
    "PublicKey",
    "An ML-DSA public key: its canonical bytes (parameter set tag, then the key), hex",
    "^([0-9a-f]{2})+$"
);
string_schema!(
    Signature,
    "Signature",
    "An ML-DSA signature: its canonical bytes (parameter set tag, then the signature), hex",
    "^([0-9a-f]{2})+$"
);

/// `"noop"`, `{"block": hex}` or `{"membership": hex}`.
impl utoipa::PartialSchema for EntryPayload {
    fn schema() -> RefOr<Schema> {
        let hex = |name: &str, description: &str| {
            ObjectBuilder::new()
                .property(
                    name,
                    ObjectBuilder::new()
                        .schema_type(Type::String)
                        .description(Some(description))
                        .pattern(Some("^([0-9a-f]{2})*$")),
                )
                .required(name)
        };
        OneOfBuilder::new()
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .enum_values(Some(["noop"]))
                    .description(Some("The empty entry a new leader appends")),
            )
            .item(hex("block", "A canonical block, hex"))
            .item(hex(
                "membership",
                "A canonical consensus configuration change, hex",
            ))
            .into()
    }
}

impl utoipa::ToSchema for EntryPayload {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("EntryPayload")
    }
}
