//! vrm-node's native core.
//!
//! Pure Rust, no pyo3: `batch` (a pushed gossip batch's items, scanned), `codec` (canonical
//! MessagePack subset), `envelope` (field checks, signed bytes, ids), `ed25519` (ZIP-215 single and
//! batch verification), `keycache` (LRU of decoded keys), `hotkeys` (fixed-base tables of
//! the keys that sign most often), `verify` (the envelope batch pipeline),
//! `reason` (reason codes and the error type), `intent` (the intent tokenizer, with its generated
//! Unicode tables in `intent_tables.rs`), `matcher` (the vendor's subscription index, matching
//! batches of intents), `intent_body` (the intent body check), `ingest` (the one pass per
//! received batch: decode, dedupe, verify, intent body check, match), `parallel` (threads).
//! The only pyo3 code is in `py`, the binding module `node._native`.

#![forbid(unsafe_code)]

pub mod batch;
pub mod codec;
pub mod ed25519;
pub mod envelope;
pub mod hotkeys;
pub mod ingest;
pub mod intent;
pub mod intent_body;
pub mod keycache;
pub mod matcher;
pub mod parallel;
pub mod reason;
pub mod verify;

mod py;
