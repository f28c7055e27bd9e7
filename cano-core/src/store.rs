//! [`MemoryStore`]: a typed key-value store in memory, for passing data between tasks.
//!
//! Values live behind `Arc<dyn Any + Send + Sync>`; a read clones the `Arc` inside the lock
//! and clones or downcasts the value outside it, so no user code ever runs while the lock
//! is held. Each store has its own lock (a `std::sync::Mutex` with feature `std`, a
//! `critical-section` mutex without it; see the crate docs), so two stores never contend.

use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::any::Any;
use core::fmt;

use hashbrown::HashMap;

use crate::error::CanoError;
use crate::resource::Resource;
use crate::sync::Lock;
use crate::type_name::{short_type_name, strip_paths};

/// Why a [`MemoryStore`] operation failed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StoreError {
    /// Nothing is stored under the key.
    KeyNotFound(String),
    /// A value is stored under the key, but of another type.
    TypeMismatch(String),
    /// `append` found a value under the key that is not a `Vec` of the appended type; the
    /// value is left unchanged.
    AppendTypeMismatch(String),
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::KeyNotFound(k) => write!(f, "Key '{k}' not found in store"),
            StoreError::TypeMismatch(m) => write!(f, "Type mismatch: {m}"),
            StoreError::AppendTypeMismatch(m) => write!(f, "Append type mismatch: {m}"),
        }
    }
}

impl core::error::Error for StoreError {}

impl From<StoreError> for CanoError {
    fn from(e: StoreError) -> Self {
        CanoError::store(alloc::format!("{e}"))
    }
}

/// `Result<T, StoreError>`.
pub type StoreResult<T> = Result<T, StoreError>;

/// A stored value and the name of its type, for error messages.
#[derive(Clone)]
struct Value {
    value: Arc<dyn Any + Send + Sync>,
    type_name: &'static str,
}

impl Value {
    fn new<T: Any + Send + Sync>(value: T) -> Value {
        Value {
            value: Arc::new(value),
            type_name: core::any::type_name::<T>(),
        }
    }
}

/// A thread-safe, typed key-value store in memory. Clones share the same data.
///
/// ```
/// use cano_core::MemoryStore;
///
/// let store = MemoryStore::new();
/// store.put("count", 1u32).unwrap();
/// assert_eq!(store.get::<u32>("count").unwrap(), 1);
/// assert!(store.get::<String>("count").is_err()); // wrong type: an error
/// store.append("log", "first".to_string()).unwrap();
/// store.append("log", "second".to_string()).unwrap();
/// assert_eq!(store.get::<Vec<String>>("log").unwrap(), ["first", "second"]);
/// ```
#[derive(Clone, Default)]
pub struct MemoryStore {
    map: Arc<Lock<HashMap<String, Value>>>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        MemoryStore::default()
    }

    fn value(&self, key: &str) -> StoreResult<Value> {
        self.map
            .with(|m| m.get(key).cloned())
            .ok_or_else(|| StoreError::KeyNotFound(String::from(key)))
    }

    /// The value under `key`, shared (no copy).
    ///
    /// Errors: [`StoreError::KeyNotFound`], [`StoreError::TypeMismatch`] naming the key,
    /// the type stored and the type asked for (without module paths):
    ///
    /// ```
    /// use cano_core::MemoryStore;
    ///
    /// let store = MemoryStore::new();
    /// store.put("count", 1u32).unwrap();
    /// assert_eq!(
    ///     store.get::<String>("count").unwrap_err().to_string(),
    ///     "Type mismatch: key 'count' holds a value of type u32, not String"
    /// );
    /// ```
    pub fn get_shared<T: Any + Send + Sync>(&self, key: &str) -> StoreResult<Arc<T>> {
        let stored = self.value(key)?;
        let type_name = stored.type_name;
        stored
            .value
            .downcast::<T>()
            .map_err(|_| type_mismatch::<T>(key, type_name))
    }

    /// A clone of the value under `key`. Errors as [`get_shared`](Self::get_shared).
    pub fn get<T: Any + Send + Sync + Clone>(&self, key: &str) -> StoreResult<T> {
        self.get_shared::<T>(key).map(|v| T::clone(&v))
    }

    /// Stores `value` under `key`, replacing what was there. Never fails today; the
    /// `Result` leaves room for bounded stores.
    pub fn put<T: Any + Send + Sync>(&self, key: &str, value: T) -> StoreResult<()> {
        let value = Value::new(value);
        let key = String::from(key);
        let old = self.map.with(|m| m.insert(key, value));
        drop(old); // outside the lock: the old value's destructor is user code
        Ok(())
    }

    /// Removes the value under `key`; a missing key is not an error.
    pub fn remove(&self, key: &str) -> StoreResult<()> {
        let old = self.map.with(|m| m.remove(key));
        drop(old);
        Ok(())
    }

    /// Appends `item` to the `Vec<T>` under `key`, creating it if the key is empty.
    ///
    /// Errors with [`StoreError::AppendTypeMismatch`] when the key holds something else
    /// (which is left unchanged).
    pub fn append<T: Any + Send + Sync + Clone>(&self, key: &str, item: T) -> StoreResult<()> {
        // Copy-on-write outside the lock, then swap in only if nobody changed the value
        // meanwhile; the retry loop runs again only under a concurrent append to this key.
        loop {
            let current = self.map.with(|m| m.get(key).cloned());
            let mut list: Vec<T> = match &current {
                None => Vec::new(),
                Some(stored) => stored
                    .value
                    .downcast_ref::<Vec<T>>()
                    .ok_or_else(|| {
                        StoreError::AppendTypeMismatch(mismatch_message::<Vec<T>>(
                            key,
                            stored.type_name,
                        ))
                    })?
                    .clone(),
            };
            list.push(item.clone());
            let new = Value::new(list);
            let swapped = self.map.with(|m| {
                let unchanged = match (m.get(key), &current) {
                    (None, None) => true,
                    (Some(now), Some(seen)) => Arc::ptr_eq(&now.value, &seen.value),
                    _ => false,
                };
                if unchanged {
                    Some(m.insert(String::from(key), new))
                } else {
                    None
                }
            });
            if let Some(old) = swapped {
                drop(old);
                return Ok(());
            }
        }
    }

    /// Whether something is stored under `key`.
    pub fn contains_key(&self, key: &str) -> bool {
        self.map.with(|m| m.contains_key(key))
    }

    /// Every key, in no particular order.
    pub fn keys(&self) -> Vec<Arc<str>> {
        self.map
            .with(|m| m.keys().map(|k| Arc::from(k.as_str())).collect())
    }

    /// How many keys are stored.
    pub fn len(&self) -> usize {
        self.map.with(|m| m.len())
    }

    /// Whether the store is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Removes everything.
    pub fn clear(&self) {
        let old = self.map.with(core::mem::take);
        drop(old);
    }
}

fn type_mismatch<T>(key: &str, stored: &str) -> StoreError {
    StoreError::TypeMismatch(mismatch_message::<T>(key, stored))
}

fn mismatch_message<Requested>(key: &str, stored: &str) -> String {
    alloc::format!(
        "key '{key}' holds a value of type {}, not {}",
        strip_paths(stored),
        short_type_name::<Requested>()
    )
}

impl fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryStore")
            .field("len", &self.len())
            .finish()
    }
}

impl Resource for MemoryStore {}
