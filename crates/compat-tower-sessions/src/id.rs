//! How a tower-sessions [`Id`] (an `i128`) becomes a sessionbank [`SessionId`] (32 characters)
//! and back.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sessionbank_core::{SESSION_ID_LEN, SessionId};
use tower_sessions_core::session::Id;

/// The fixed first ten characters of every sessionbank id that holds a tower-sessions session.
///
/// The other 22 characters are the id's 16 bytes (little-endian) in unpadded base64url: exactly
/// the text tower-sessions itself writes into its cookie (`Id`'s `Display`). See
/// [`session_id_for`].
pub const ID_PREFIX: &str = "towersess_";

const ENCODED_LEN: usize = SESSION_ID_LEN - ID_PREFIX.len();

/// The sessionbank id under which the tower-sessions session `id` is stored:
/// [`ID_PREFIX`] followed by tower-sessions' own text for `id` (22 characters of base64url of
/// its 16 little-endian bytes).
///
/// - **Injective and reversible**: base64 of a fixed 16 bytes is one-to-one, so two ids never
///   share a record, and [`tower_id_of`] gives the `i128` back (for listings).
/// - **As unguessable as the id**: nothing is derived or hashed; the 128 random bits
///   tower-sessions generated (or [`TowerSessionsStore`](crate::TowerSessionsStore) generated,
///   from the OS, after a collision) are the secret, and a store lookup needs all of them.
/// - **Namespaced**: sessionbank's own ids are 192 random bits, so one starting with the
///   ten-character prefix is a 1-in-2^60 event; tools can tell the two kinds apart.
///
/// # Examples
///
/// ```
/// use sessionbank_tower_sessions::{ID_PREFIX, session_id_for, tower_id_of};
/// use tower_sessions_core::session::Id;
///
/// let id = Id(0x0123_4567_89ab_cdef_0123_4567_89ab_cdef);
/// let ours = session_id_for(&id);
/// assert_eq!(ours.as_str().len(), 32);
/// assert_eq!(ours.as_str(), format!("{ID_PREFIX}{id}"));
/// assert_eq!(tower_id_of(&ours), Some(id));
/// ```
pub fn session_id_for(id: &Id) -> SessionId {
    let mut text = [0u8; SESSION_ID_LEN];
    text[..ID_PREFIX.len()].copy_from_slice(ID_PREFIX.as_bytes());
    // 16 bytes always encode to 22 characters, which fit the buffer exactly.
    let written = URL_SAFE_NO_PAD
        .encode_slice(id.0.to_le_bytes(), &mut text[ID_PREFIX.len()..])
        .unwrap_or_default();
    debug_assert_eq!(written, ENCODED_LEN);
    let text = std::str::from_utf8(&text).unwrap_or_default();
    match SessionId::parse(text) {
        Ok(id) => id,
        // Unreachable: the prefix and base64url use only id characters.
        Err(_) => unreachable!("a prefixed base64url id is always a valid SessionId"),
    }
}

/// The tower-sessions id a sessionbank id stands for, or `None` when it is not one that
/// [`session_id_for`] made (a native sessionbank session, say).
///
/// # Examples
///
/// ```
/// use sessionbank_core::SessionId;
/// use sessionbank_tower_sessions::tower_id_of;
///
/// assert_eq!(tower_id_of(&SessionId::generate()?), None);
/// # Ok::<(), sessionbank_core::Error>(())
/// ```
pub fn tower_id_of(id: &SessionId) -> Option<Id> {
    let encoded = id.as_str().strip_prefix(ID_PREFIX)?;
    let mut bytes = [0u8; 16];
    match URL_SAFE_NO_PAD.decode_slice(encoded, &mut bytes) {
        Ok(16) => {
            let tower = Id(i128::from_le_bytes(bytes));
            // Reject non-canonical text (stray low bits in the last character).
            (session_id_for(&tower) == *id).then_some(tower)
        }
        _ => None,
    }
}
