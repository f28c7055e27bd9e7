//! Type names for messages a user reads: `Vec<String>`, not `alloc::vec::Vec<alloc::string::String>`.
//!
//! A `cano_tokio` user never wrote `cano_core::` or `alloc::`, so error messages name types
//! the way the user's own code does, without their module paths.

use alloc::string::String;

/// `T`'s name with every module path removed (`cano_core::store::MemoryStore` →
/// `MemoryStore`, `core::option::Option<alloc::string::String>` → `Option<String>`).
pub(crate) fn short_type_name<T: ?Sized>() -> String {
    strip_paths(core::any::type_name::<T>())
}

/// Removes each `path::` prefix in front of an identifier; every other character is kept,
/// so generics, references, tuples, arrays and `dyn` read as written.
pub(crate) fn strip_paths(full: &str) -> String {
    let mut out = String::with_capacity(full.len());
    // Where the identifier being copied began in `out`.
    let mut segment_start = 0;
    let mut rest = full;
    while let Some(c) = rest.chars().next() {
        if let Some(after) = rest.strip_prefix("::") {
            if out.len() > segment_start {
                // `path::` before an identifier: drop the path.
                out.truncate(segment_start);
            } else {
                // `>::assoc` and the like: not a module path, keep it.
                out.push_str("::");
                segment_start = out.len();
            }
            rest = after;
            continue;
        }
        out.push(c);
        if !(c.is_alphanumeric() || c == '_') {
            segment_start = out.len();
        }
        rest = &rest[c.len_utf8()..];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn module_paths_are_removed_everywhere_in_a_type() {
        let cases = [
            ("cano_core::store::MemoryStore", "MemoryStore"),
            ("alloc::string::String", "String"),
            ("alloc::vec::Vec<alloc::string::String>", "Vec<String>"),
            (
                "core::result::Result<(u32, &str), alloc::boxed::Box<dyn core::any::Any + core::marker::Send>>",
                "Result<(u32, &str), Box<dyn Any + Send>>",
            ),
            ("[alloc::string::String; 4]", "[String; 4]"),
            ("&mut my_app::tasks::Fetch", "&mut Fetch"),
            ("<my::T as my::Trait>::Output", "<T as Trait>::Output"),
            ("u64", "u64"),
            ("", ""),
        ];
        for (full, short) in cases {
            assert_eq!(strip_paths(full), short, "{full}");
        }
        assert_eq!(short_type_name::<alloc::vec::Vec<String>>(), "Vec<String>");
    }

    #[test]
    fn no_name_of_a_real_type_keeps_a_path() {
        fn check<T: ?Sized>() {
            let short = short_type_name::<T>();
            assert!(!short.contains("::"), "{short}");
            assert!(!short.is_empty());
        }
        check::<crate::MemoryStore>();
        check::<crate::CircuitBreaker>();
        check::<Option<alloc::sync::Arc<crate::Resources>>>();
        check::<crate::workflow::Workflow<u8>>();
        check::<dyn core::any::Any + Send + Sync>();
        check::<(crate::CanoError, [crate::Instant; 2])>();
    }
}
