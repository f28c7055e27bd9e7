//! Opening bad files: every one is a typed error, never a panic or a hang.

mod support;

use cano_redb::{OpenError, RedbStore};
use futures::executor::block_on;
use redb::{ReadableDatabase, TableDefinition};
use support::{SplitMix, TempDir};

fn open(path: &std::path::Path) -> Result<RedbStore, OpenError> {
    block_on(RedbStore::open(path))
}

#[test]
fn a_new_file_is_initialised_and_reopens() {
    let dir = TempDir::new("new");
    let path = dir.file("store.redb");
    let store = open(&path).expect("a new file opens");
    assert_eq!(store.path(), path);
    drop(store);
    open(&path).expect("a cano store reopens");
    // An empty existing file is a new store too.
    let empty = dir.file("empty.redb");
    std::fs::write(&empty, b"").unwrap();
    open(&empty).expect("an empty file opens as a new store");
}

#[test]
fn random_bytes_are_corrupt() {
    let dir = TempDir::new("random");
    let mut rng = SplitMix(11);
    for (i, len) in [1usize, 7, 512, 4096, 64 * 1024].into_iter().enumerate() {
        let path = dir.file(&format!("random-{i}.redb"));
        std::fs::write(&path, rng.bytes(len)).unwrap();
        match open(&path) {
            Err(OpenError::Corrupt { path: p, detail }) => {
                assert_eq!(p, path);
                assert!(!detail.is_empty());
            }
            other => panic!("{len} random bytes: expected Corrupt, got {other:?}"),
        }
    }
}

#[test]
fn a_truncated_store_is_an_error_not_a_panic() {
    let dir = TempDir::new("truncated");
    let whole = dir.file("whole.redb");
    drop(open(&whole).unwrap());
    let bytes = std::fs::read(&whole).unwrap();
    assert!(bytes.len() > 64, "a store file has a header");
    for cut in [1, 16, 64, 512, bytes.len() / 2, bytes.len() - 1] {
        let path = dir.file(&format!("cut-{cut}.redb"));
        std::fs::write(&path, &bytes[..cut]).unwrap();
        match open(&path) {
            Err(OpenError::Corrupt { detail, .. }) => assert!(!detail.is_empty()),
            other => panic!(
                "truncated at {cut} of {}: expected Corrupt, got {other:?}",
                bytes.len()
            ),
        }
    }
}

#[test]
fn a_redb_file_of_another_program_is_foreign() {
    let dir = TempDir::new("foreign");
    let path = dir.file("other.redb");
    {
        let db = redb::Database::create(&path).unwrap();
        let txn = db.begin_write().unwrap();
        {
            let mut t = txn
                .open_table(TableDefinition::<&str, u64>::new("users"))
                .unwrap();
            t.insert("alice", &1).unwrap();
        }
        txn.commit().unwrap();
    }
    match open(&path) {
        Err(OpenError::Foreign { tables, .. }) => assert_eq!(tables, ["users"]),
        other => panic!("expected Foreign, got {other:?}"),
    }
    // The other program's data is untouched.
    let db = redb::Database::create(&path).unwrap();
    let read = db.begin_read().unwrap();
    let t = read
        .open_table(TableDefinition::<&str, u64>::new("users"))
        .unwrap();
    assert_eq!(t.get("alice").unwrap().unwrap().value(), 1);
    assert_eq!(read.list_tables().unwrap().count(), 1);
}

#[test]
fn a_meta_table_without_our_mark_is_foreign() {
    let dir = TempDir::new("meta");
    let path = dir.file("meta.redb");
    {
        let db = redb::Database::create(&path).unwrap();
        let txn = db.begin_write().unwrap();
        {
            // Same name, another value type.
            let mut t = txn
                .open_table(TableDefinition::<&str, u64>::new("cano_meta"))
                .unwrap();
            t.insert("format", &7).unwrap();
        }
        txn.commit().unwrap();
    }
    assert!(
        matches!(open(&path), Err(OpenError::Foreign { .. })),
        "a cano_meta table of another type is not ours"
    );
}

#[test]
fn a_future_schema_version_is_refused() {
    let dir = TempDir::new("schema");
    let path = dir.file("future.redb");
    drop(open(&path).unwrap());
    {
        let db = redb::Database::create(&path).unwrap();
        let txn = db.begin_write().unwrap();
        {
            let mut t = txn
                .open_table(TableDefinition::<&str, &[u8]>::new("cano_meta"))
                .unwrap();
            t.insert("schema", 99u32.to_le_bytes().as_slice()).unwrap();
        }
        txn.commit().unwrap();
    }
    match open(&path) {
        Err(e @ OpenError::UnsupportedSchema { found: 99, .. }) => {
            let message = e.to_string();
            assert!(message.contains("99"), "{message}");
        }
        other => panic!("expected UnsupportedSchema, got {other:?}"),
    }
}

#[test]
fn a_file_open_in_another_store_is_already_open() {
    let dir = TempDir::new("twice");
    let path = dir.file("store.redb");
    let _first = open(&path).unwrap();
    assert!(matches!(open(&path), Err(OpenError::AlreadyOpen { .. })));
}

#[test]
fn a_missing_directory_is_an_io_error() {
    let dir = TempDir::new("missing");
    let path = dir.path().join("no-such-dir").join("store.redb");
    match open(&path) {
        Err(e @ OpenError::Io { .. }) => assert!(std::error::Error::source(&e).is_some()),
        other => panic!("expected Io, got {other:?}"),
    }
}

#[test]
fn an_open_error_converts_to_a_cano_error_with_its_source() {
    let dir = TempDir::new("convert");
    let path = dir.file("random.redb");
    std::fs::write(&path, SplitMix(3).bytes(100)).unwrap();
    let error: cano_core::CanoError = open(&path).unwrap_err().into();
    let source = std::error::Error::source(&error).expect("the OpenError is the source");
    assert!(source.to_string().contains("random.redb"), "{source}");
    assert!(matches!(
        source.downcast_ref::<OpenError>(),
        Some(OpenError::Corrupt { .. })
    ));
}
